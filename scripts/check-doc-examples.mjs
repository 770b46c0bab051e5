// `npm run docs:check`: checks the API reference as TypeDoc builds it (typedoc.json: the exports of
// lib/index.ts), without writing it. Fails when TypeDoc warns (a comment it misreads, a link to
// nothing, a referenced type that is not exported) or when an exported name's doc comment is
// missing or has no @example holding a code block. test/docs-examples.test.ts runs it; `npm run
// docs:examples` (scripts/doc-examples.js) type-checks and runs the examples themselves.
import * as td from 'typedoc';

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
app.validate(project);

const noComment = [];
const noExample = [];
for (const reflection of project.children ?? []) {
  const comment = commentOf(reflection);
  const name = `${reflection.name} (${td.ReflectionKind.singularString(reflection.kind).toLowerCase()})`;
  if (!hasSummary(comment)) noComment.push(name);
  else if (!hasCodeExample(comment)) noExample.push(name);
}

const total = project.children?.length ?? 0;
console.log(`docs:check: ${total} exported names.`);
console.log(`No doc comment (${noComment.length}): ${noComment.join(', ') || 'none'}`);
console.log(`A doc comment without an @example code block (${noExample.length}): ${noExample.join(', ') || 'none'}`);
const warned = app.logger.hasWarnings() || app.logger.hasErrors();
if (warned) console.log('TypeDoc warned (see above).');
process.exit(noComment.length + noExample.length > 0 || warned ? 1 : 0);
