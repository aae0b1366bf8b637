-- API keys are revoked, not deleted: a revoked key authenticates nothing, and its record stays for the audit trail.
ALTER TABLE api_keys ADD COLUMN revoked_at TEXT;
