-- Tag keys are compared with ASCII letters folded only, as the policy engine compares the
-- condition keys that name them (aws:RequestTag/K, aws:ResourceTag/K). SQLite's built-in
-- lower() folds ASCII only, which is that folding.
UPDATE tags SET key_lower = lower(tag_key);
