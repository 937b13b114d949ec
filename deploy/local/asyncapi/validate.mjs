// Validates AsyncAPI documents with the official parser (@asyncapi/parser).
// Usage: node asyncapi-validate.mjs FILE...; prints every diagnostic, exits 1 on
// any error (severity 0) or warning (severity 1), so a document that the
// ecosystem's tools would complain about fails CI.
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { Parser, fromFile } from "@asyncapi/parser";

const parser = new Parser();
const severities = ["error", "warning", "info", "hint"];
let failed = false;
for (const file of process.argv.slice(2)) {
  const { document, diagnostics } = await fromFile(parser, resolve(file)).parse();
  for (const d of diagnostics) {
    const where = d.path.join("/");
    console.log(`${file}: ${severities[d.severity]} ${d.code} at ${where}: ${d.message}`);
    if (d.severity <= 1) failed = true;
  }
  if (!document) failed = true;
}
process.exit(failed ? 1 : 0);
