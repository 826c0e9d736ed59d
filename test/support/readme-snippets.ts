/**
 * The README's code snippets as programs: every fenced `js` and `ts` block of README.md (and of docs/*.md), found by
 * its marker, turned into a module that runs as written, and type-checked with `strict`.
 *
 * Each block is preceded, on the line before its fence (blank lines allowed), by a marker:
 *
 *   <!-- snippet <id>: standalone -->                    a complete ES module on its own
 *   <!-- snippet <id>: continues <other> -->             added to the program of snippet <other>
 *   <!-- snippet <id>: continues <other>, in a route --> the body of an async route handler behind
 *                                                        `logto.authenticated()` in <other>'s program,
 *                                                        with `req` and `res`
 *
 * A snippet that continues another is added at the end of that program, unless some of its
 * top-level statements take the place of the program's: one that declares a name the program
 * declares (`const logto = ...`), one that repeats a statement word for word, or one that mounts a
 * session middleware (express-session's or cookie-session's) where the program mounts one. Then
 * the program's statements it replaces go, and the snippet goes where the first of them was, as
 * the README tells a reader to paste it. Imports are pasted as written: one of a name the program
 * imports already is an error (it would not load), and imports nothing uses any more are dropped.
 *
 * The README names a few stand-ins in prose, which the harness defines when a snippet uses them
 * without defining them: `handler` (a route handler), `db` (a database), `cert` and `key` (a
 * client certificate and key). The harness also keeps the server that `app.listen(...)` returns
 * (as `server`), records the value of each of the snippet's top-level expression statements in
 * `__values`, and exports every top-level name, so that a test can reach what the snippet made.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import ts from 'typescript';

export interface Snippet {
  id: string;
  /** `js` or `ts`: the fence's language. */
  language: 'js' | 'ts';
  /** What the snippet needs around it; `undefined` when it has no valid marker. */
  context: { kind: 'standalone' } | { kind: 'continues'; parent: string; inRoute: boolean } | undefined;
  code: string;
  /** The Markdown file the block is in, relative to the package: `README.md` or `docs/<name>.md`. */
  file: string;
  /** 1-based line of the opening fence in that file. */
  line: number;
  /** Why the marker could not be read, if it could not. */
  problem?: string;
}

/** Fence languages that are code the README promises runs, and what each is checked as. */
const codeLanguages: Record<string, 'js' | 'ts'> = { js: 'js', javascript: 'js', mjs: 'js', jsx: 'js', ts: 'ts', typescript: 'ts', mts: 'ts', tsx: 'ts' };

const markerPattern = /^<!--\s*snippet\s+([a-z0-9-]+):\s*(standalone|continues\s+([a-z0-9-]+)(,\s*in a route)?)\s*-->$/;

/**
 * Every snippet of the package's Markdown: README.md, then docs/*.md (a page there may continue a
 * README snippet, such as the Quick start). Names are unique across all of them.
 */
export function readAllSnippets(root: string): Snippet[] {
  const docs = existsSync(join(root, 'docs')) ? readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).sort() : [];
  const snippets = [join(root, 'README.md'), ...docs.map((name) => join(root, 'docs', name))].flatMap((path) => readSnippets(path, relative(root, path)));
  const seen = new Set<string>();
  for (const snippet of snippets) {
    if (seen.has(snippet.id) && !snippet.problem) snippet.problem = `${snippet.file} line ${snippet.line}: a second snippet named "${snippet.id}"`;
    seen.add(snippet.id);
  }
  return snippets;
}

/** Every fenced block of a Markdown file (README.md by default) whose language is JavaScript or TypeScript, with its marker. */
export function readSnippets(readmePath: string, file = 'README.md'): Snippet[] {
  const lines = readFileSync(readmePath, 'utf8').split('\n');
  const snippets: Snippet[] = [];
  for (let index = 0; index < lines.length; index += 1) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w+-]*)/.exec(lines[index] ?? '');
    if (!open) continue;
    const [, indent = '', fence = '', info = ''] = open;
    let close = index + 1;
    while (close < lines.length && !(lines[close] ?? '').trimStart().startsWith(fence)) close += 1;
    const body = lines.slice(index + 1, close).map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line.trimStart()));
    const language = codeLanguages[info.toLowerCase()];
    if (language) {
      let previous = index - 1;
      while (previous >= 0 && (lines[previous] ?? '').trim() === '') previous -= 1;
      const markerLine = (lines[previous] ?? '').trim();
      const marker = markerPattern.exec(markerLine);
      const snippet: Snippet = {
        id: marker?.[1] ?? `line-${index + 1}`,
        language,
        context: undefined,
        code: `${body.join('\n')}\n`,
        file,
        line: index + 1,
      };
      if (!marker) {
        snippet.problem = `${file} line ${index + 1}: a \`${info}\` block without a marker on the line before it, such as <!-- snippet <id>: continues quick-start --> (see test/support/readme-snippets.ts)`;
      } else if (marker[2] === 'standalone') {
        snippet.context = { kind: 'standalone' };
      } else {
        snippet.context = { kind: 'continues', parent: marker[3] ?? '', inRoute: marker[4] !== undefined };
      }
      snippets.push(snippet);
    }
    index = close;
  }
  const seen = new Set<string>();
  for (const snippet of snippets) {
    if (seen.has(snippet.id)) snippet.problem = `${file} line ${snippet.line}: a second snippet named "${snippet.id}"`;
    seen.add(snippet.id);
  }
  return snippets;
}

// ---------------------------------------------------------------------------
// Programs
// ---------------------------------------------------------------------------

interface Statement {
  /** The statement with the comments and blank lines before it (and, for the last one, after it). */
  text: string;
  /** The statement's own text. */
  body: string;
  /** What comes before `body` in `text`, and after it. */
  leading: string;
  trailing: string;
  /** Names it declares (imports included). */
  names: string[];
  /** Its text without comments and with whitespace collapsed, to find a repeated statement. */
  key: string;
  isImport: boolean;
  /** `app.use(session(...))` or `app.use(cookieSession(...))`. */
  mountsSession: boolean;
  isExpression: boolean;
  node: ts.Statement;
}

const sessionModules = new Set(['express-session', 'cookie-session']);

function parse(code: string, language: 'js' | 'ts'): ts.SourceFile {
  return ts.createSourceFile(language === 'ts' ? 'snippet.mts' : 'snippet.mjs', code, ts.ScriptTarget.ES2022, true, language === 'ts' ? ts.ScriptKind.TS : ts.ScriptKind.JS);
}

function bindingNames(name: ts.BindingName): string[] {
  if (ts.isIdentifier(name)) return [name.text];
  return name.elements.flatMap((element) => (ts.isOmittedExpression(element) ? [] : bindingNames(element.name)));
}

function declaredNames(statement: ts.Statement): string[] {
  if (ts.isVariableStatement(statement)) return statement.declarationList.declarations.flatMap((d) => bindingNames(d.name));
  if ((ts.isFunctionDeclaration(statement) || ts.isClassDeclaration(statement)) && statement.name) return [statement.name.text];
  if (ts.isImportDeclaration(statement)) {
    const clause = statement.importClause;
    if (!clause) return [];
    const names = clause.name ? [clause.name.text] : [];
    const bindings = clause.namedBindings;
    if (bindings && ts.isNamespaceImport(bindings)) names.push(bindings.name.text);
    if (bindings && ts.isNamedImports(bindings)) names.push(...bindings.elements.map((element) => element.name.text));
    return names;
  }
  return [];
}

/** The local names that `file` imports from express-session or cookie-session. */
function sessionImports(file: ts.SourceFile): Set<string> {
  const names = new Set<string>();
  for (const statement of file.statements) {
    if (ts.isImportDeclaration(statement) && ts.isStringLiteral(statement.moduleSpecifier) && sessionModules.has(statement.moduleSpecifier.text)) {
      for (const name of declaredNames(statement)) names.add(name);
    }
  }
  return names;
}

function mountsSession(statement: ts.Statement, sessionNames: Set<string>): boolean {
  if (!ts.isExpressionStatement(statement) || !ts.isCallExpression(statement.expression)) return false;
  const call = statement.expression;
  const argument = call.arguments[0];
  return (
    ts.isPropertyAccessExpression(call.expression) &&
    call.expression.name.text === 'use' &&
    argument !== undefined &&
    ts.isCallExpression(argument) &&
    ts.isIdentifier(argument.expression) &&
    sessionNames.has(argument.expression.text)
  );
}

function statementsOf(code: string, language: 'js' | 'ts', sessionNames: Set<string>): Statement[] {
  const file = parse(code, language);
  const names = new Set([...sessionNames, ...sessionImports(file)]);
  let previousEnd = 0;
  return file.statements.map((node, index) => {
    const leading = code.slice(previousEnd, node.getStart(file));
    const body = code.slice(node.getStart(file), node.getEnd());
    const trailing = index === file.statements.length - 1 ? code.slice(node.getEnd()) : '';
    previousEnd = node.getEnd();
    return {
      text: leading + body + trailing,
      body,
      leading,
      trailing,
      names: declaredNames(node),
      key: node.getText(file).replace(/\/\/[^\n]*|\/\*[\s\S]*?\*\//g, '').replace(/\s+/g, ' ').trim(),
      isImport: ts.isImportDeclaration(node),
      mountsSession: mountsSession(node, names),
      isExpression: ts.isExpressionStatement(node),
      node,
    };
  });
}

/** Identifiers used as values or types anywhere in `code` (not as property names). */
function referencedNames(code: string, language: 'js' | 'ts'): Set<string> {
  const file = parse(code, language);
  const names = new Set<string>();
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) return;
    if (ts.isIdentifier(node)) {
      const parent = node.parent;
      const isPropertyName =
        (ts.isPropertyAccessExpression(parent) && parent.name === node) ||
        (ts.isPropertyAssignment(parent) && parent.name === node) ||
        (ts.isMethodDeclaration(parent) && parent.name === node) ||
        (ts.isPropertySignature(parent) && parent.name === node);
      if (!isPropertyName) names.add(node.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  // JSDoc type references such as `/** @type {Express.User} */` are comments to the parser.
  for (const match of code.matchAll(/@type\s*\{([^}]*)\}/g)) for (const word of (match[1] ?? '').matchAll(/[A-Za-z_$][\w$]*/g)) names.add(word[0]);
  return names;
}

/** An import statement with only the specifiers in `keep`, or '' when none is left. */
function importWithOnly(statement: Statement, keep: (name: string) => boolean): string {
  const node = statement.node as ts.ImportDeclaration;
  const clause = node.importClause;
  const module = node.moduleSpecifier.getText();
  if (!clause) return statement.text;
  const parts: string[] = [];
  if (clause.name && keep(clause.name.text)) parts.push(clause.name.text);
  const bindings = clause.namedBindings;
  if (bindings && ts.isNamespaceImport(bindings) && keep(bindings.name.text)) parts.push(`* as ${bindings.name.text}`);
  if (bindings && ts.isNamedImports(bindings)) {
    const kept = bindings.elements.filter((element) => keep(element.name.text)).map((element) => element.getText());
    if (kept.length > 0) parts.push(`{ ${kept.join(', ')} }`);
  }
  if (parts.length === 0) return '';
  const typeOnly = clause.isTypeOnly ? 'type ' : '';
  return `${statement.leading}import ${typeOnly}${parts.join(', ')} from ${module};${statement.trailing}`;
}

/** A piece of a program: text, and whether it is the snippet's own (for type errors). */
interface Piece {
  text: string;
  own: boolean;
}

/** The snippet's text with each top-level expression statement's value recorded in `__values`. */
function recordValues(statements: Statement[]): string {
  return statements
    .map((statement) => {
      // `app.listen(...)` is kept as `const server = app.listen(...)` instead (see buildProgram).
      if (!statement.isExpression || /^\w+\.listen\(/.test(statement.body)) return statement.text;
      return `${statement.leading}__values.push(${statement.body.replace(/;$/, '')});${statement.trailing}`;
    })
    .join('');
}

/**
 * The program of `snippet` as pieces (without the harness's additions): its own code, inside or
 * after the program it continues.
 */
function programPieces(snippet: Snippet, byId: Map<string, Snippet>, final: boolean, seen: string[] = []): { pieces: Piece[]; language: 'js' | 'ts' } {
  const context = snippet.context;
  if (!context) throw new Error(snippet.problem ?? `snippet ${snippet.id} has no marker`);
  const own = (text: string): Piece => ({ text, own: final });
  if (context.kind === 'standalone') {
    const statements = statementsOf(snippet.code, snippet.language, new Set());
    return { pieces: [own(final ? recordValues(statements) : snippet.code)], language: snippet.language };
  }
  if (seen.includes(snippet.id)) throw new Error(`snippets continue each other in a circle: ${[...seen, snippet.id].join(' -> ')}`);
  const parent = byId.get(context.parent);
  if (!parent) throw new Error(`snippet ${snippet.id} continues "${context.parent}", which no snippet of README.md or docs/ is`);
  const base = programPieces(parent, byId, false, [...seen, snippet.id]);
  const language = parent.language === 'ts' || snippet.language === 'ts' ? 'ts' : 'js';
  const baseCode = base.pieces.map((piece) => piece.text).join('');
  const baseFile = parse(baseCode, base.language);
  const baseStatements = statementsOf(baseCode, base.language, new Set());
  const ownStatements = statementsOf(snippet.code, snippet.language, sessionImports(baseFile));
  const ownImports = ownStatements.filter((statement) => statement.isImport);
  const ownBody = ownStatements.filter((statement) => !statement.isImport);
  const ownText = (statements: Statement[]): string => (final ? recordValues(statements) : statements.map((statement) => statement.text).join(''));

  // In a route, the snippet goes after the whole program; otherwise in place of what it replaces.
  const replaced = new Set<number>();
  if (!context.inRoute) {
    baseStatements.forEach((statement, index) => {
      if (statement.isImport) return;
      const takesItsPlace = ownBody.some(
        (mine) => mine.names.some((name) => statement.names.includes(name)) || mine.key === statement.key || (mine.mountsSession && statement.mountsSession),
      );
      if (takesItsPlace) replaced.add(index);
    });
  }
  const position = replaced.size > 0 ? Math.min(...replaced) : baseStatements.length;
  // Pasted as written: an import of a name the program imports already would not even load.
  const baseImported = new Set(baseStatements.filter((statement) => statement.isImport).flatMap((statement) => statement.names));
  const imported = ownImports.flatMap((statement) => statement.names).filter((name) => baseImported.has(name));
  if (imported.length > 0) {
    throw new Error(`snippet ${snippet.id} imports ${imported.join(', ')} again, which ${context.parent} imports already: pasted as written, it would not load`);
  }
  const pieces: Piece[] = [];
  for (const statement of baseStatements) {
    if (statement.isImport) pieces.push({ text: statement.text, own: false });
  }
  pieces.push(...ownImports.map((statement) => own(statement.text)));
  baseStatements.forEach((statement, index) => {
    if (index === position) pieces.push(own(`\n${ownText(ownBody)}`));
    if (!statement.isImport && !replaced.has(index)) pieces.push({ text: statement.text, own: false });
  });
  if (context.inRoute) {
    const values = language === 'ts' ? 'const __values: unknown[] = [];' : '/** @type {unknown[]} */ const __values = [];';
    pieces.push({ text: `\napp.get('/snippet', logto.authenticated({}, async (req, res) => {\n${values}`, own: false });
    pieces.push(own(`\n${ownText(ownBody)}`));
    pieces.push({ text: '\nres.json(__values);\n}));\n', own: false });
  } else if (position === baseStatements.length) {
    pieces.push(own(`\n${ownText(ownBody)}`));
  }
  return { pieces, language };
}

/** Stand-ins for names the README uses in prose; each is defined when a snippet uses it without defining it. */
const standIns: Record<string, { js: string; ts: string }> = {
  handler: {
    js: "/** @param {import('express').Request} req @param {import('express').Response} res */\nfunction handler(req, res) {\n  res.json({ handler: req.path, user: req.user ?? null });\n}\n",
    ts: "function handler(req: import('express').Request, res: import('express').Response): void {\n  res.json({ handler: req.path, user: req.user ?? null });\n}\n",
  },
  db: {
    js: [
      '/** @typedef {{ logtoId: string, email?: string | null }} UserFields */',
      'const db = {',
      '  users: {',
      '    /** @type {UserFields[]} */ upserts: [],',
      '    /** @param {UserFields} fields */',
      '    async upsert(fields) {',
      '      db.users.upserts.push(fields);',
      '      return { id: `user-${fields.logtoId}`, ...fields };',
      '    },',
      '  },',
      '};',
      '',
    ].join('\n'),
    ts: [
      'type UserFields = { logtoId: string; email?: string | null };',
      'const db = {',
      '  users: {',
      '    upserts: [] as UserFields[],',
      '    async upsert(fields: UserFields) {',
      '      db.users.upserts.push(fields);',
      '      return { id: `user-${fields.logtoId}`, ...fields };',
      '    },',
      '  },',
      '};',
      '',
    ].join('\n'),
  },
  // The test provider serves plain http: no TLS connection uses them.
  cert: { js: '/** @type {string | undefined} */\nconst cert = undefined;\n', ts: 'const cert: string | undefined = undefined;\n' },
  key: { js: '/** @type {string | undefined} */\nconst key = undefined;\n', ts: 'const key: string | undefined = undefined;\n' },
};

export interface SnippetProgram {
  snippet: Snippet;
  language: 'js' | 'ts';
  /** The module's source. */
  source: string;
  /** 1-based lines of `source` that are the snippet's own. */
  ownLines: Set<number>;
  /** The top-level names the module exports. */
  exports: string[];
}

/** The module that runs `snippet` as written, in the context its marker names. */
export function buildProgram(snippet: Snippet, snippets: Snippet[]): SnippetProgram {
  const byId = new Map(snippets.map((each) => [each.id, each]));
  const { pieces, language } = programPieces(snippet, byId, true);
  const body = pieces.map((piece) => piece.text).join('');
  const statements = statementsOf(body, language, new Set());
  const declared = new Set(statements.flatMap((statement) => statement.names));
  const used = referencedNames(body, language);

  // Imports that nothing uses any more (the replaced session middleware's, say) are dropped.
  const kept: Piece[] = [];
  for (const piece of pieces) {
    if (piece.own) {
      kept.push(piece);
      continue;
    }
    const parts = statementsOf(piece.text, language, new Set());
    if (parts.length > 0 && parts.every((part) => part.isImport)) {
      const text = parts.map((part) => importWithOnly(part, (name) => used.has(name))).join('');
      if (text) kept.push({ text, own: false });
    } else {
      kept.push(piece);
    }
  }

  const header: Piece[] = [];
  const firstOther = kept.findIndex((piece) => !statementsOf(piece.text, language, new Set()).every((part) => part.isImport));
  for (const [name, code] of Object.entries(standIns)) {
    if (used.has(name) && !declared.has(name)) header.push({ text: code[language], own: false });
  }
  const recorded = language === 'ts' ? 'const __values: unknown[] = [];\n' : '/** @type {unknown[]} */\nconst __values = [];\n';
  header.push({ text: recorded, own: false });
  const ordered = [...kept.slice(0, firstOther === -1 ? kept.length : firstOther), { text: '\n', own: false }, ...header, ...kept.slice(firstOther === -1 ? kept.length : firstOther)];

  // Keep the server that `app.listen(...)` starts, to close it after the test.
  const listening = /^(\s*)(\w+\.listen\()/m;
  const withServer = ordered.map((piece) => ({ ...piece, text: piece.text.replace(listening, '$1const server = $2') }));

  let source = '';
  const ownLines = new Set<number>();
  for (const piece of withServer) {
    // Each piece on lines of its own.
    if (source !== '' && !source.endsWith('\n') && !piece.text.startsWith('\n')) source += '\n';
    // The snippet's own lines: from the piece's first character that is not white space to its last.
    const lineAt = (offset: number): number => (source + piece.text).slice(0, offset).split('\n').length;
    const first = piece.text.search(/\S/);
    const last = piece.text.trimEnd().length - 1;
    if (piece.own && first >= 0) for (let line = lineAt(source.length + first); line <= lineAt(source.length + last); line += 1) ownLines.add(line);
    source += piece.text;
  }
  const names = [...new Set(statementsOf(source, language, new Set()).flatMap((statement) => statement.names))];
  source += `\nexport { ${names.join(', ')} };\n`;
  return { snippet, language, source, ownLines, exports: names };
}

// ---------------------------------------------------------------------------
// Type-checking
// ---------------------------------------------------------------------------

/**
 * Type-checks each file in a program of its own (so that one snippet's imports, such as
 * express-session's and cookie-session's declarations of `req.session`, do not leak into another's),
 * with `strict`, as a user's app would be. Declaration files are parsed once for all of them.
 * Returns each file's errors as `line: message`.
 */
export function typeCheck(files: string[]): Map<string, Array<{ line: number; message: string }>> {
  const options: ts.CompilerOptions = {
    allowJs: true,
    checkJs: true,
    strict: true,
    noEmit: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    skipLibCheck: true,
    types: ['node'],
    // The NestJS snippet's decorators are NestJS's (TypeScript's experimental ones), as in a Nest app's tsconfig.
    experimentalDecorators: true,
  };
  const host = ts.createCompilerHost(options);
  const parsed = new Map<string, ts.SourceFile | undefined>();
  const read = host.getSourceFile.bind(host);
  host.getSourceFile = (fileName, languageVersion, onError, shouldCreate) => {
    if (files.includes(fileName)) return read(fileName, languageVersion, onError, shouldCreate);
    if (!parsed.has(fileName)) parsed.set(fileName, read(fileName, languageVersion, onError, shouldCreate));
    return parsed.get(fileName);
  };
  const results = new Map<string, Array<{ line: number; message: string }>>();
  for (const file of files) {
    const paths = nestFastifyPaths(file);
    const program = ts.createProgram([file], paths ? { ...options, paths } : options, host);
    const source = program.getSourceFile(file);
    const diagnostics = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics(), ...(source ? [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)] : [])];
    results.set(
      file,
      diagnostics.map((diagnostic) => ({
        line: diagnostic.file && diagnostic.start !== undefined ? diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start).line + 1 : 0,
        message: ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'),
      })),
    );
  }
  return results;
}

/**
 * For a program on NestJS's Fastify platform, `fastify` resolves as in an app that installs what
 * its snippet's install line says: to the copy that @nestjs/platform-fastify pins, which the
 * Fastify plugins it registers share (@fastify/cookie and @fastify/session have no fastify of
 * their own). This package's devDependency is another version, which such an app never has, and
 * whose types do not match the platform's.
 */
function nestFastifyPaths(file: string): ts.MapLike<string[]> | undefined {
  if (!readFileSync(file, 'utf8').includes("'@nestjs/platform-fastify'")) return undefined;
  const platform = createRequire(file).resolve('@nestjs/platform-fastify/package.json');
  return { fastify: [dirname(createRequire(platform).resolve('fastify/package.json'))] };
}
