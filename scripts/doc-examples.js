// `npm run docs:examples`: type-checks and runs every example of the API reference.
//
// Every name lib/index.ts exports must carry an @example with a ```ts code block in its doc
// comment. Every such block (of the exported declarations, their public members, and the
// package's @module comment) is type-checked against the library's TypeScript sources and run in
// this process, in order; it passes when it completes without throwing. An example is written as
// a user writes code: `import { ... } from 'bptt'`, node built-ins, top-level await; it asserts
// what it shows with node:assert and removes the files it writes.
//
// How: the TypeScript compiler API reads the exports and their doc comments; each example becomes
// a module whose imports come first (`from 'bptt'` pointing at lib/) and whose other statements
// are the body of `async function run()`. One program type-checks them all against lib/*.ts;
// each emitted module runs with lib/*.ts compiled on load (as test/helpers/ts-require.js does),
// so the examples run against the current sources, not a dist/ build.
//
// Exit code 0 when every export has an example and every example type-checks and runs, else 1.
// With --json it prints the whole report as JSON (test/docs-examples.test.ts reads it).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const ts = require('typescript');

const REPO = path.resolve(__dirname, '..');
const ENTRY = path.join(REPO, 'lib', 'index.ts');
const LIB = path.join(REPO, 'lib');

const compilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.CommonJS,
  lib: ['lib.es2022.d.ts', 'lib.esnext.disposable.d.ts'],
  strict: true,
  esModuleInterop: true,
  skipLibCheck: true,
  types: ['node'],
};

/** The fenced code blocks of the @example sections of a doc comment's raw text. */
function exampleBlocks(docText) {
  const lines = docText
    .replace(/^\/\*\*/, '')
    .replace(/\*\/$/, '')
    .split('\n')
    .map((line) => line.replace(/^\s*\* ?/, ''));
  const blocks = [];
  let inExample = false;
  let fence = null;
  for (const line of lines) {
    if (fence !== null) {
      if (/^```\s*$/.test(line)) {
        if (inExample) blocks.push(fence.join('\n'));
        fence = null;
      } else {
        fence.push(line);
      }
    } else if (/^```/.test(line)) {
      fence = [];
    } else if (/^@\w+/.test(line)) {
      inExample = line.startsWith('@example');
    }
  }
  return blocks;
}

function isPublicMember(member) {
  if (member.name !== undefined && ts.isPrivateIdentifier(member.name)) return false;
  const flags = ts.getCombinedModifierFlags(member);
  if (flags & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) return false;
  return !ts.getJSDocTags(member).some((t) => t.tagName.text === 'internal');
}

function memberName(member) {
  if (ts.isConstructorDeclaration(member)) return 'constructor';
  if (member.name === undefined) return '(signature)';
  return ts.isComputedPropertyName(member.name) ? `[${member.name.expression.getText()}]` : member.name.getText();
}

/**
 * The exports of lib/index.ts, those whose own doc comment has no @example code block, and every
 * example: { owner ('RNN', 'RNN.trainStep', ...), where ('lib/rnn.ts:123'), code }.
 */
function collectExamples(program) {
  const checker = program.getTypeChecker();
  const entry = program.getSourceFile(ENTRY);
  const names = [];
  const withoutExample = [];
  const examples = [];
  const seen = new Set();
  const add = (owner, node) => {
    const source = node.getSourceFile();
    let count = 0;
    // A variable's comment sits on its statement; getJSDocCommentsAndTags finds it there.
    for (const doc of ts.getJSDocCommentsAndTags(node).filter(ts.isJSDoc)) {
      const line = source.getLineAndCharacterOfPosition(doc.getStart()).line + 1;
      for (const code of exampleBlocks(doc.getText())) {
        count++;
        if (seen.has(code)) continue; // overloads may share a comment's example
        seen.add(code);
        examples.push({ owner, where: `${path.relative(REPO, source.fileName)}:${line}`, code });
      }
    }
    return count;
  };
  const first = entry.statements[0];
  if (first !== undefined && ts.getJSDocTags(first).some((t) => t.tagName.text === 'module')) add('bptt (the module)', first);
  for (const exported of checker.getExportsOfModule(checker.getSymbolAtLocation(entry))) {
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    const name = exported.getName();
    names.push(name);
    let own = 0;
    for (const decl of symbol.getDeclarations() ?? []) {
      own += add(name, decl);
      if (ts.isClassDeclaration(decl) || ts.isInterfaceDeclaration(decl)) {
        for (const member of decl.members) if (isPublicMember(member)) add(`${name}.${memberName(member)}`, member);
      }
    }
    if (own === 0) withoutExample.push(name);
  }
  return { names, withoutExample, examples };
}

/** An example as a module: its imports (`'bptt'` becomes lib/), then the rest as the body of run(). */
function exampleModule(code) {
  const source = ts.createSourceFile('example.ts', code, ts.ScriptTarget.ES2022, true);
  const imports = [];
  const body = [];
  for (const statement of source.statements) {
    const text = code.slice(statement.getFullStart(), statement.getEnd());
    if (ts.isImportDeclaration(statement)) imports.push(text.trim().replace(/(['"])bptt\1/, JSON.stringify(LIB)));
    else body.push(text);
  }
  return `${imports.join('\n')}\nexport async function run(): Promise<void> {${body.join('')}\n}\n`;
}

/**
 * Type-checks the examples in one program with the library (reusing `docProgram`'s parsed
 * sources) and emits each as CommonJS. Returns, per example, its type errors (or null) and its JS.
 */
function compileExamples(examples, docProgram) {
  const files = examples.map((_, i) => path.join(REPO, 'test', `doc-example-${i}.ts`)); // virtual files
  const sources = new Map(files.map((f, i) => [f, exampleModule(examples[i].code)]));
  const host = ts.createCompilerHost(compilerOptions);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (fileName, version, onError, create) => {
    const text = sources.get(path.resolve(fileName));
    return text !== undefined ? ts.createSourceFile(fileName, text, version) : getSourceFile.call(host, fileName, version, onError, create);
  };
  host.fileExists = (fileName) => sources.has(path.resolve(fileName)) || fileExists.call(host, fileName);
  host.readFile = (fileName) => sources.get(path.resolve(fileName)) ?? readFile.call(host, fileName);
  const program = ts.createProgram([ENTRY, ...files], compilerOptions, host, docProgram);
  const format = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => REPO, getNewLine: () => '\n' };
  return files.map((file) => {
    const source = program.getSourceFile(file);
    const problems = [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)];
    let js = '';
    program.emit(source, (name, text) => {
      if (name.endsWith('.js')) js = text;
    });
    return { typeErrors: problems.length > 0 ? ts.formatDiagnostics(problems, format) : null, js };
  });
}

/** Lets require() load lib/*.ts, compiled on load. */
function requireTypeScript() {
  const options = { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true };
  require.extensions['.ts'] = (module, filename) => {
    const { outputText } = ts.transpileModule(fs.readFileSync(filename, 'utf8'), { compilerOptions: options, fileName: filename });
    module._compile(outputText, filename);
  };
}

/** Runs each compiled example in turn, its console output captured; returns { error, output, ms } per example. */
async function runExamples(compiled) {
  requireTypeScript();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-doc-examples-'));
  const results = [];
  const original = { log: console.log, info: console.info, warn: console.warn, error: console.error };
  try {
    for (const [i, { typeErrors, js }] of compiled.entries()) {
      if (typeErrors !== null) {
        results.push({ error: null, output: '', ms: 0, ran: false });
        continue;
      }
      const file = path.join(dir, `example-${i}.js`);
      fs.writeFileSync(file, js);
      const output = [];
      const capture = (...args) => output.push(args.map((a) => (typeof a === 'string' ? a : require('util').inspect(a))).join(' '));
      Object.assign(console, { log: capture, info: capture, warn: capture, error: capture });
      const started = performance.now();
      let error = null;
      try {
        await require(file).run();
      } catch (err) {
        error = err instanceof Error ? err.stack ?? String(err) : String(err);
      } finally {
        Object.assign(console, original);
      }
      results.push({ error, output: output.join('\n'), ms: Math.round(performance.now() - started), ran: true });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

async function main() {
  const json = process.argv.includes('--json');
  const docProgram = ts.createProgram([ENTRY], compilerOptions);
  const { names, withoutExample, examples } = collectExamples(docProgram);
  const compiled = compileExamples(examples, docProgram);
  const results = await runExamples(compiled);
  const report = {
    names,
    withoutExample,
    examples: examples.map((e, i) => ({ ...e, typeErrors: compiled[i].typeErrors, ...results[i] })),
  };
  const failed = report.examples.filter((e) => e.typeErrors !== null || e.error !== null);
  const code = withoutExample.length > 0 || failed.length > 0 ? 1 : 0;
  if (json) {
    // Exits once the report is out, even when examples left handles (timers, workers) open.
    process.stdout.write(JSON.stringify(report), () => process.exit(code));
    return;
  }
  for (const e of failed) console.log(`\n${e.owner} (${e.where}):\n${e.typeErrors ?? e.error}\n--- example ---\n${e.code}`);
  console.log(`\ndocs:examples: ${names.length} exported names, ${withoutExample.length} without an @example${withoutExample.length ? `: ${withoutExample.join(', ')}` : ''}.`);
  console.log(`${examples.length} examples: ${examples.length - failed.length} type-check and run, ${failed.length} fail.`);
  process.exit(code);
}

main().catch((err) => {
  console.error(err);
  process.exit(2);
});
