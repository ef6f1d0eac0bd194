// A Node.js host of the HTTP API, with nothing but Node's own fetch: posts each task of
// argv[4] (a JSON array of bodies) to argv[2] with the bearer key argv[3], and prints one
// JSON array of {status, body}, in order.
const [url, key, tasks] = process.argv.slice(2);
const out = [];
for (const task of JSON.parse(tasks)) {
  const reply = await fetch(`${url}/v1/tasks`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify(task),
  });
  out.push({ status: reply.status, body: await reply.json() });
}
const runtimes = await fetch(`${url}/v1/runtimes`, { headers: { authorization: `Bearer ${key}` } });
out.push({ status: runtimes.status, body: await runtimes.json() });
console.log(JSON.stringify(out));
