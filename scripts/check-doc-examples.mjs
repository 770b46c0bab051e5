// `npm run docs:check`: lists the package's exported names whose doc comment is missing or lacks
// what the API reference promises, and fails if there is any. Not part of `npm test` yet: it is
// there to be enforced once the doc comments are written.
//   - a class, function or constant needs a doc comment with an @example holding a code block;
//   - an interface or type alias needs a doc comment.
// It reads the same project TypeDoc documents (typedoc.json: the exports of lib/index.ts).
import * as td from 'typedoc';

const VALUE_KINDS = td.ReflectionKind.Class | td.ReflectionKind.Function | td.ReflectionKind.Variable;
const TYPE_KINDS = td.ReflectionKind.Interface | td.ReflectionKind.TypeAlias | td.ReflectionKind.Enum;

/** The comment that documents an export: a function's is on its (first) signature. */
function commentOf(reflection) {
  return reflection.comment ?? reflection.signatures?.find((s) => s.comment)?.comment;
}

function hasSummary(comment) {
  return comment !== undefined && comment.summary.some((part) => part.text.trim() !== '');
}

function hasCodeExample(comment) {
  return comment !== undefined && comment.blockTags.some((tag) => tag.tag === '@example' && tag.content.some((part) => part.kind === 'code'));
}

const app = await td.Application.bootstrapWithPlugins({}, [new td.TypeDocReader(), new td.TSConfigReader()]);
const project = await app.convert();
if (!project) {
  console.error('docs:check: TypeDoc could not convert the project (its messages are above)');
  process.exit(2);
}

const noComment = [];
const noExample = [];
for (const reflection of project.children ?? []) {
  const comment = commentOf(reflection);
  const kind = td.ReflectionKind.singularString(reflection.kind).toLowerCase();
  if (reflection.kindOf(VALUE_KINDS)) {
    if (!hasSummary(comment)) noComment.push(`${reflection.name} (${kind})`);
    else if (!hasCodeExample(comment)) noExample.push(`${reflection.name} (${kind})`);
  } else if (reflection.kindOf(TYPE_KINDS) && !hasSummary(comment)) {
    noComment.push(`${reflection.name} (${kind})`);
  }
}

const total = project.children?.length ?? 0;
console.log(`docs:check: ${total} exported names.`);
console.log(`No doc comment (${noComment.length}): ${noComment.join(', ') || 'none'}`);
console.log(`A doc comment without an @example code block (${noExample.length}): ${noExample.join(', ') || 'none'}`);
process.exit(noComment.length + noExample.length > 0 ? 1 : 0);
