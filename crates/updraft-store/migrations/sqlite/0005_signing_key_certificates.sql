-- The certificate the gateway generated with each signing key (NULL for imported keys), so an operator can fetch it
-- again over the API: the private key never leaves the gateway.
ALTER TABLE signing_keys ADD COLUMN certificate_pem TEXT;
