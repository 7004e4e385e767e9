/**
 * Reads the source with the TypeScript compiler and finds every place where text
 * becomes SQL without parameter binding: `sql.unsafe(text)` and `sql.literal(text)` on
 * an `@effect/sql` client. (Values interpolated into ``sql`...${value}` `` are always
 * bound parameters, so only these two need a look.)
 *
 * Such text is accepted when it is constant: literals, `const` bindings of constants,
 * templates and concatenations of constants, either branch of a conditional, and
 * function parameters whose type is a fixed list of string literals or whose every
 * caller passes a constant.
 */
import { readdirSync, statSync } from "node:fs"
import { join } from "node:path"
import ts from "typescript"

export interface SqlTextUse {
  readonly file: string
  readonly line: number
  /** `unsafe` or `literal`. */
  readonly method: string
  /** The argument as written. */
  readonly text: string
  /** Why it is not constant; none when it is. */
  readonly problem: string | undefined
}

const sourceFiles = (dir: string): Array<string> =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sourceFiles(path)
    return path.endsWith(".ts") ? [path] : []
  })

const ITERATORS = new Set(["map", "forEach", "flatMap"])

const isConstDeclaration = (declaration: ts.VariableDeclaration): boolean =>
  ts.isVariableDeclarationList(declaration.parent) && (declaration.parent.flags & ts.NodeFlags.Const) !== 0

const isLiteralUnion = (type: ts.Type): boolean =>
  type.isUnion() ? type.types.every((member) => member.isStringLiteral()) : type.isStringLiteral()

/** The name under which a function is called, for a function whose parameter is `param`. */
const functionName = (param: ts.ParameterDeclaration): ts.Node | undefined => {
  const fn = param.parent
  if (ts.isFunctionDeclaration(fn)) return fn.name
  if ((ts.isArrowFunction(fn) || ts.isFunctionExpression(fn)) && ts.isVariableDeclaration(fn.parent))
    return fn.parent.name
  return undefined
}

/** Every use under `dirs` (relative to `root`), with the functions they call read from the files they import. */
export const audit = (root: string, dirs: ReadonlyArray<string>): Array<SqlTextUse> => {
  const files = dirs.flatMap((dir) => sourceFiles(join(root, dir)))
  const program = ts.createProgram(files, {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    skipLibCheck: true,
    noEmit: true
  })
  const checker = program.getTypeChecker()
  const resolve = (node: ts.Node): ts.Symbol | undefined => {
    const symbol = checker.getSymbolAtLocation(node)
    return symbol !== undefined && (symbol.flags & ts.SymbolFlags.Alias) !== 0
      ? checker.getAliasedSymbol(symbol)
      : symbol
  }

  // Every call in the program, by the function it calls, to check what callers pass.
  const callsOf = new Map<ts.Symbol, Array<ts.CallExpression>>()
  const collect = (node: ts.Node): void => {
    if (ts.isCallExpression(node)) {
      const callee = ts.isPropertyAccessExpression(node.expression) ? node.expression.name : node.expression
      const symbol = resolve(callee)
      if (symbol !== undefined) callsOf.set(symbol, [...(callsOf.get(symbol) ?? []), node])
    }
    ts.forEachChild(node, collect)
  }
  const sources = program.getSourceFiles().filter((file) => !file.fileName.includes("/node_modules/"))
  for (const file of sources) collect(file)

  /** The elements of the array literal whose `.map` / `.forEach` callback has `param` as its element. */
  const iteratedArray = (param: ts.ParameterDeclaration): ReadonlyArray<ts.Expression> | undefined => {
    const fn = param.parent
    const call = fn.parent
    if (
      fn.parameters[0] !== param ||
      !ts.isCallExpression(call) ||
      !ts.isPropertyAccessExpression(call.expression)
    )
      return undefined
    if (!ITERATORS.has(call.expression.name.text)) return undefined
    let target: ts.Expression = call.expression.expression
    if (ts.isIdentifier(target)) {
      const declaration = resolve(target)?.valueDeclaration
      if (
        declaration === undefined ||
        !ts.isVariableDeclaration(declaration) ||
        !isConstDeclaration(declaration)
      )
        return undefined
      target = declaration.initializer ?? target
    }
    return ts.isArrayLiteralExpression(target) ? target.elements : undefined
  }

  /** Why `expr` may not be constant text; undefined when it is. */
  const problemOf = (expr: ts.Expression, seen: Set<ts.Node>): string | undefined => {
    if (seen.has(expr)) return undefined
    seen.add(expr)
    if (ts.isStringLiteral(expr) || ts.isNoSubstitutionTemplateLiteral(expr) || ts.isNumericLiteral(expr))
      return undefined
    if (ts.isParenthesizedExpression(expr)) return problemOf(expr.expression, seen)
    if (ts.isTemplateExpression(expr)) {
      for (const span of expr.templateSpans) {
        const problem = problemOf(span.expression, seen)
        if (problem !== undefined) return problem
      }
      return undefined
    }
    if (ts.isBinaryExpression(expr) && expr.operatorToken.kind === ts.SyntaxKind.PlusToken)
      return problemOf(expr.left, seen) ?? problemOf(expr.right, seen)
    if (ts.isConditionalExpression(expr))
      return problemOf(expr.whenTrue, seen) ?? problemOf(expr.whenFalse, seen)
    if (isLiteralUnion(checker.getTypeAtLocation(expr))) return undefined
    if (ts.isIdentifier(expr) || ts.isPropertyAccessExpression(expr)) {
      const symbol = resolve(ts.isPropertyAccessExpression(expr) ? expr.name : expr)
      const declaration = symbol?.valueDeclaration ?? symbol?.declarations?.[0]
      if (declaration === undefined) return `${expr.getText()} is not declared in the source`
      if (ts.isVariableDeclaration(declaration)) {
        return isConstDeclaration(declaration) && declaration.initializer !== undefined
          ? problemOf(declaration.initializer, seen)
          : `${expr.getText()} is not a constant`
      }
      if (ts.isParameter(declaration)) {
        if (isLiteralUnion(checker.getTypeAtLocation(declaration))) return undefined
        const elements = iteratedArray(declaration)
        if (elements !== undefined) {
          for (const element of elements) {
            const problem = problemOf(element, seen)
            if (problem !== undefined) return `${problem} (an element iterated as ${expr.getText()})`
          }
          return undefined
        }
        const name = functionName(declaration)
        const fnSymbol = name === undefined ? undefined : resolve(name)
        const calls = fnSymbol === undefined ? [] : (callsOf.get(fnSymbol) ?? [])
        if (calls.length === 0) return `parameter ${expr.getText()} of a function with no known callers`
        const index = declaration.parent.parameters.indexOf(declaration)
        for (const call of calls) {
          const argument = call.arguments[index]
          if (argument === undefined) continue
          const problem = problemOf(argument, seen)
          if (problem !== undefined) return `${problem} (passed as ${expr.getText()})`
        }
        return undefined
      }
      return `${expr.getText()} is not a constant`
    }
    return `${expr.getText()} is computed`
  }

  const uses: Array<SqlTextUse> = []
  const inScope = (fileName: string) => dirs.some((dir) => fileName.startsWith(join(root, dir)))
  const visit = (file: ts.SourceFile) => (node: ts.Node) => {
    if (
      ts.isCallExpression(node) &&
      ts.isPropertyAccessExpression(node.expression) &&
      (node.expression.name.text === "unsafe" || node.expression.name.text === "literal") &&
      checker.getTypeAtLocation(node.expression.expression).getProperty("onDialectOrElse") !== undefined
    ) {
      const [text] = node.arguments
      uses.push({
        file: file.fileName.slice(root.length + 1),
        line: file.getLineAndCharacterOfPosition(node.getStart()).line + 1,
        method: node.expression.name.text,
        text: text?.getText() ?? "",
        problem: text === undefined ? "no text" : problemOf(text, new Set())
      })
    }
    ts.forEachChild(node, visit(file))
  }
  for (const file of sources) if (inScope(file.fileName)) visit(file)(file)
  return uses
}
