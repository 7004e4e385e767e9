/**
 * The part of better-sqlite3 (the embedded store's driver) that the
 * embedded store calls directly: the connection it opens for the SQL client and the
 * prepared statements of the ledger's synchronous steps.
 */
declare module "better-sqlite3" {
  namespace Database {
    interface RunResult {
      readonly changes: number
      readonly lastInsertRowid: number | bigint
    }

    interface Statement {
      readonly reader: boolean
      run(...params: ReadonlyArray<unknown>): RunResult
      all(...params: ReadonlyArray<unknown>): Array<Record<string, unknown>>
      get(...params: ReadonlyArray<unknown>): Record<string, unknown> | undefined
      raw(toggle?: boolean): this
      safeIntegers(toggle?: boolean): this
    }

    interface Transaction<Args extends ReadonlyArray<unknown>, A> {
      (...args: Args): A
      readonly deferred: (...args: Args) => A
      readonly immediate: (...args: Args) => A
      readonly exclusive: (...args: Args) => A
    }

    interface BackupMetadata {
      readonly totalPages: number
      readonly remainingPages: number
    }

    interface Options {
      readonly readonly?: boolean
    }

    interface Database {
      readonly inTransaction: boolean
      readonly open: boolean
      prepare(source: string): Statement
      transaction<Args extends ReadonlyArray<unknown>, A>(fn: (...args: Args) => A): Transaction<Args, A>
      pragma(source: string, options?: { readonly simple?: boolean }): unknown
      exec(source: string): this
      serialize(): Uint8Array
      backup(destination: string): Promise<BackupMetadata>
      loadExtension(path: string): this
      close(): this
    }
  }

  const Database: new (filename: string, options?: Database.Options) => Database.Database
  export default Database
}
