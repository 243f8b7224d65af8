-- Model lifecycle: a deployment may carry the date its model is deprecated (ISO 8601
-- `YYYY-MM-DD`), so that the analyzer's access review can list deprecated models that are
-- still reachable and who can invoke them. NULL: not deprecated.
ALTER TABLE ai_deployments ADD COLUMN deprecated_on TEXT;
