// A flood against a running server: POSTs to PATH (refused /mcp initialize without a token, or webhooks for an unknown id), keep-alive, N in flight, for S seconds.
import http from 'node:http';
import { statSync } from 'node:fs';
const [url, db, seconds = '10', inflight = '8', path = '/mcp'] = process.argv.slice(2);
const size = () => ['', '-wal'].reduce((sum, ext) => { try { return sum + statSync(db + ext).size; } catch { return sum; } }, 0);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(inflight) });
const before = size();
let done = 0; let statuses = {};
const end = Date.now() + Number(seconds) * 1000;
const body = path === '/mcp' ? JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'flood', version: '1' } } }) : 'id=tr_doesNotExist1';
const type = path === '/mcp' ? 'application/json' : 'application/x-www-form-urlencoded';
async function worker() {
  while (Date.now() < end) {
    await new Promise((resolve) => {
      const req = http.request(url + path, { method: 'POST', agent, headers: { 'content-type': type, accept: 'application/json, text/event-stream' } }, (res) => { res.resume(); res.on('end', () => { statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1; done++; resolve(); }); });
      req.on('error', () => resolve());
      req.end(body);
    });
  }
}
await Promise.all(Array.from({ length: Number(inflight) }, worker));
await new Promise((r) => setTimeout(r, 500));
const grew = size() - before;
console.log(JSON.stringify({ requests: done, per_second: Math.round(done / Number(seconds)), statuses, db_growth_bytes: grew, bytes_per_request: Math.round(grew / Math.max(1, done)) }));
process.exit(0);
