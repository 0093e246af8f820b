// scripts/check-metadata, part (a): the connector's configuration schema through AJV.
//
// Usage: node check-config-schema.cjs NODE_TOOLS_DIR SCHEMA MANIFEST EXAMPLE
//
// 1. The whole schema, compiled by Ajv2020 (it declares draft 2020-12) in strict mode
//    with ajv-formats: unknown keywords, unknown formats and dubious types are errors.
// 2. The platform's own check, as OpenCTI's catalog does for a manager-supported contract
//    (catalog-domain.ts): the manifest with `config_schema` set to this schema, then
//    `new Ajv({ coerceTypes: true })` (draft-07 Ajv, default strict mode) with only the
//    formats it registers (password, uri, duration, email, date-time, date), compiling
//    `{ type, properties, required, additionalProperties }`.
// 3. The example configuration (EXAMPLE: JSON object of env var -> value) validated by
//    (1), and as the platform validates what the connector manager sends: every value a
//    string (arrays comma-separated), the variables it injects itself removed, types
//    coerced, `additionalProperties: false` over the variables given.
// 4. Every `default` is valid against its own property, and an empty configuration is
//    rejected when something is required.
//
// `format: "password"` needs nothing custom: ajv-formats lists it among its unchecked
// formats (any string passes), and the platform registers it by name; `writeOnly` is in
// AJV's metadata vocabulary in both drafts, so strict mode accepts it.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const [toolsDir, schemaPath, manifestPath, examplePath] = process.argv.slice(2);
if (!examplePath) {
  console.error("usage: node check-config-schema.cjs NODE_TOOLS_DIR SCHEMA MANIFEST EXAMPLE");
  process.exit(2);
}
const need = (name) => require(require.resolve(name, { paths: [path.resolve(toolsDir)] }));
const Ajv2020 = need("ajv/dist/2020").default;
const Ajv = need("ajv").default;
const addFormats = need("ajv-formats").default;

// What the platform strips from a manager-supported contract and injects itself.
const PLATFORM_INJECTED = ["OPENCTI_TOKEN", "OPENCTI_URL", "CONNECTOR_TYPE", "CONNECTOR_RUN_AND_TERMINATE"];
const PLATFORM_FORMATS = ["password", "uri", "duration", "email", "date-time", "date"];

let failures = 0;
const fail = (msg) => {
  failures += 1;
  console.error(`check-metadata: FAIL (ajv) ${msg}`);
};
const ok = (msg) => console.log(`check-metadata: ok (ajv) ${msg}`);
const errorsText = (ajv, errors) => ajv.errorsText(errors, { separator: "; ", dataVar: "config" });

const readJson = (p) => JSON.parse(fs.readFileSync(p, "utf8"));
const schema = readJson(schemaPath);
const manifest = readJson(manifestPath);
const example = readJson(examplePath);
const properties = schema.properties || {};
const required = schema.required || [];

// 1. Strict Ajv2020 + ajv-formats.
const strict = new Ajv2020({ strict: true, allErrors: true });
addFormats(strict);
let validateStrict = null;
try {
  validateStrict = strict.compile(schema);
  ok(`schema compiles with Ajv2020 in strict mode (${Object.keys(properties).length} properties, ${required.length} required)`);
} catch (err) {
  fail(`schema does not compile with Ajv2020 in strict mode: ${err.message}`);
}

// 2. The platform's catalog check.
const platform = new Ajv({ coerceTypes: true });
addFormats(platform, PLATFORM_FORMATS);
const contract = { ...manifest, config_schema: schema };
if (contract.manager_supported) {
  if (!contract.container_image) fail("manager_supported contract without container_image");
  if (!contract.container_type) fail("manager_supported contract without container_type");
}
const contractValidation = {
  type: contract.config_schema.type,
  properties: contract.config_schema.properties,
  required: contract.config_schema.required,
  additionalProperties: contract.config_schema.additionalProperties,
};
try {
  platform.compile(contractValidation);
  ok("contract compiles as OpenCTI's catalog compiles it (Ajv draft-07, coerceTypes, its six formats)");
} catch (err) {
  fail(`OpenCTI's catalog would reject the contract ("Contract must be a valid json schema definition"): ${err.message}`);
}

// 3a. The example, as typed JSON, against the whole schema.
if (validateStrict) {
  if (validateStrict(example)) {
    ok(`example configuration is valid (${Object.keys(example).join(", ")})`);
  } else {
    fail(`example configuration is invalid: ${errorsText(strict, validateStrict.errors)}`);
  }
}

// 3b. The example as the connector manager sends it: strings, validated by the platform.
const asStrings = {};
for (const [key, value] of Object.entries(example)) {
  if (PLATFORM_INJECTED.includes(key) || !properties[key]) continue;
  asStrings[key] = Array.isArray(value) ? value.join(",") : String(value);
}
const managerObject = {};
for (const [key, value] of Object.entries(asStrings)) {
  managerObject[key] = properties[key].type === "array"
    ? value.split(",").map((v) => v.trim()).filter((v) => v !== "")
    : value;
}
const managerRequired = required.filter((k) => !PLATFORM_INJECTED.includes(k) && k !== "CONNECTOR_ID");
const managerProperties = {};
for (const key of new Set([...managerRequired, ...Object.keys(managerObject)])) {
  if (properties[key]) managerProperties[key] = properties[key];
}
try {
  const validateManager = platform.compile({
    type: schema.type,
    properties: managerProperties,
    required: managerRequired,
    additionalProperties: false,
  });
  if (validateManager(managerObject)) {
    ok("example configuration passes the platform's check of a manager-deployed connector (string values)");
  } else {
    fail(`the platform would refuse the example configuration from the connector manager: ${errorsText(platform, validateManager.errors)}`);
  }
} catch (err) {
  fail(`cannot compile the platform's configuration check: ${err.message}`);
}

// 4. Defaults and required.
if (validateStrict) {
  let defaults = 0;
  const before = failures;
  for (const [key, prop] of Object.entries(properties)) {
    if (!Object.prototype.hasOwnProperty.call(prop, "default")) continue;
    defaults += 1;
    const v = strict.compile({ type: "object", properties: { [key]: prop } });
    if (!v({ [key]: prop.default })) {
      fail(`default of ${key} (${JSON.stringify(prop.default)}) is invalid: ${errorsText(strict, v.errors)}`);
    }
  }
  if (failures === before) ok(`every default is valid (${defaults})`);
  if (required.length > 0 && validateStrict({})) {
    fail("an empty configuration is accepted although variables are required");
  } else if (required.length > 0) {
    ok("an empty configuration is rejected (required variables)");
  }
}

process.exit(failures > 0 ? 1 : 0);
