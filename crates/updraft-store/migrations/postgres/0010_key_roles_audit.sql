-- API keys get a role and an optional channel scope. Keys stored before roles could do everything in their scope,
-- so they become `admin` (an app-scoped one: admin of that app only), which is what they could do.
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE api_keys ADD COLUMN channel TEXT;

-- One record per management write: when, which key (its name, never its secret), app, channel, action, and the
-- state before and after as JSON text.
CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    at TEXT NOT NULL,
    key_name TEXT NOT NULL,
    app_id TEXT,
    channel TEXT,
    action TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT
);
CREATE INDEX audit_log_app ON audit_log (app_id, id);
