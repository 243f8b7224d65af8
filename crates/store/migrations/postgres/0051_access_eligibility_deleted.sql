-- Just-in-time access (issue 15): an eligibility can be deleted. The row stays, marked with
-- the time, because past requests name it (their history, their approvers); a deleted
-- eligibility is not listed and no request can be made under it.
ALTER TABLE access_eligibility ADD COLUMN deleted_ms BIGINT;
