// A browser for the host's OAuth tests: it opens the authorization URL given, follows the
// authorization server's redirects with its cookies, and stops at the first redirect away
// from it (to the host's callback), which it opens too, with the cookie given as its second
// argument if any (the one a server gave the browser that started the flow). It prints that
// URL, then the callback's status and body.
const start = new URL(process.argv[2]);
const cookies = new Map();
let url = start;
for (let hop = 0; hop < 20; hop += 1) {
  const cookie = [...cookies].map(([name, value]) => `${name}=${value}`).join("; ");
  const response = await fetch(url, { redirect: "manual", headers: cookie ? { cookie } : {} });
  for (const header of response.headers.getSetCookie()) {
    const [pair] = header.split(";");
    const at = pair.indexOf("=");
    cookies.set(pair.slice(0, at), pair.slice(at + 1));
  }
  const location = response.headers.get("location");
  if (response.status >= 300 && response.status < 400 && location) {
    url = new URL(location, url);
    if (url.origin !== start.origin) {
      console.log(url.href);
      const callback = await fetch(url, process.argv[3] ? { headers: { cookie: process.argv[3] } } : {});
      console.log(callback.status);
      console.log(await callback.text());
      process.exit(0);
    }
    continue;
  }
  console.log(url.href);
  console.log(response.status);
  console.log(await response.text());
  process.exit(1);
}
console.error("too many redirects");
process.exit(1);
