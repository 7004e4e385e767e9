/** Starts a Node server on a free loopback port; resolves with its base URL. */
import type { Server } from "node:http"

export const listen = (server: Server): Promise<string> =>
  new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      if (typeof address !== "object" || address === null) return reject(new Error("no address"))
      resolve(`http://127.0.0.1:${address.port}/`)
    })
  })

/** Closes a server and every connection it still has. */
export const close = (server: Server): Promise<void> =>
  new Promise((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })
