// An OTLP/HTTP JSON sink for the tracing benchmark (docs/benchmarks.md): answers 200 to every POST on 127.0.0.1:4399 and prints how many spans it got on SIGTERM.
import { createServer } from "node:http";
let spans = 0,
  posts = 0;
createServer((req, res) => {
  const c = [];
  req.on("data", (d) => c.push(d));
  req.on("end", () => {
    posts++;
    try {
      const b = JSON.parse(Buffer.concat(c));
      for (const rs of b.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans += (ss.spans ?? []).length;
    } catch {
      /* a body that is not OTLP JSON counts no spans */
    }
    res.writeHead(200, { "content-type": "application/json" }).end("{}");
  });
}).listen(4399, "127.0.0.1");
process.on("SIGTERM", () => {
  console.log(`sink: ${posts} posts, ${spans} spans`);
  process.exit(0);
});
