/**
 * A tiny TCP proxy for outage tests: it forwards to a target until `cut()`, which
 * destroys every open connection and refuses new ones (accepts and closes them at
 * once), and forwards again after `restore()`. The shared database server itself is
 * never touched.
 */
import { createServer, type Server, type Socket, connect } from "node:net"

export interface TcpProxy {
  readonly port: number
  /** Drops every connection and refuses new ones. */
  readonly cut: () => void
  /** Forwards again. */
  readonly restore: () => void
  /** Connections accepted so far (forwarded or refused). */
  readonly accepted: () => number
  readonly close: () => Promise<void>
}

export const startProxy = (targetHost: string, targetPort: number): Promise<TcpProxy> =>
  new Promise((resolve, reject) => {
    const open = new Set<Socket>()
    let refusing = false
    let accepted = 0
    const server: Server = createServer((client) => {
      accepted++
      if (refusing) {
        client.destroy()
        return
      }
      const upstream = connect({ host: targetHost, port: targetPort })
      open.add(client)
      open.add(upstream)
      const drop = () => {
        client.destroy()
        upstream.destroy()
        open.delete(client)
        open.delete(upstream)
      }
      client.on("error", drop)
      upstream.on("error", drop)
      client.on("close", drop)
      upstream.on("close", drop)
      client.pipe(upstream)
      upstream.pipe(client)
    })
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      if (address === null || typeof address === "string") {
        reject(new Error("the proxy has no TCP port"))
        return
      }
      resolve({
        port: address.port,
        cut: () => {
          refusing = true
          for (const socket of open) socket.destroy()
          open.clear()
        },
        restore: () => {
          refusing = false
        },
        accepted: () => accepted,
        close: () =>
          new Promise((done) => {
            for (const socket of open) socket.destroy()
            server.close(() => done())
          })
      })
    })
  })
