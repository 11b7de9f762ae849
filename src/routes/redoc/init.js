// Renders the document embedded in the page. A file of its own, not an inline script, so that
// the page's Content-Security-Policy allows scripts from this server only.
const read = (id) => JSON.parse(document.getElementById(id).textContent);
Redoc.init(read("redoc-spec"), read("redoc-config"), document.getElementById("redoc-container"));
