// Fetches an Updraft Expo URL the way expo-updates does and reports what Expo's own tooling sees, as JSON:
// the status and headers, the parts as @expo/multipart-body-parser parses them, each part's expo-signature as
// structured-headers parses it, and whether Node crypto verifies it against a code-signing certificate.
//
// Usage: node expo-check.mjs <url> '<request headers as JSON>' [certificate.pem]
import crypto from 'node:crypto';
import fs from 'node:fs';
import { parseMultipartMixedResponseAsync } from '@expo/multipart-body-parser';
import { parseDictionary } from 'structured-headers';

const [url, headersJson, certPath] = process.argv.slice(2);
const publicKey = certPath ? new crypto.X509Certificate(fs.readFileSync(certPath)).publicKey : null;

function describeSignature(header, body) {
  if (!header) return null;
  const dict = parseDictionary(header);
  const members = Object.fromEntries([...dict.entries()].map(([k, [v]]) => [k, v]));
  const allStrings = [...dict.values()].every(([v]) => typeof v === 'string');
  const valid = publicKey && typeof members.sig === 'string'
    ? crypto.verify('sha256', body, publicKey, Buffer.from(members.sig, 'base64'))
    : null;
  return { members, allStrings, valid };
}

const res = await fetch(url, { headers: JSON.parse(headersJson || '{}') });
const raw = Buffer.from(await res.arrayBuffer());
const headers = {};
res.headers.forEach((value, key) => { headers[key] = value; });
const report = { status: res.status, headers, bodyText: raw.toString('utf8'), parts: null, signature: null };
const contentType = res.headers.get('content-type') || '';
if (contentType.startsWith('multipart/') && raw.length > 0) {
  const parts = await parseMultipartMixedResponseAsync(contentType, raw);
  report.parts = parts.map((part) => {
    const partHeaders = Object.fromEntries(part.headers);
    const body = Buffer.from(part.body, 'utf8');
    return {
      name: part.name,
      headers: partHeaders,
      headerNames: [...part.headers.keys()],
      body: part.body,
      json: (() => { try { return JSON.parse(part.body); } catch { return null; } })(),
      signature: describeSignature(partHeaders['expo-signature'], body),
    };
  });
} else if (raw.length > 0) {
  report.signature = describeSignature(res.headers.get('expo-signature'), raw);
}
console.log(JSON.stringify(report));
