-- Tag keys are compared with ASCII letters folded only, as the policy engine compares the
-- condition keys that name them (aws:RequestTag/K, aws:ResourceTag/K). lower() under the
-- "C" collation folds ASCII only, which is that folding. The new folding is finer than the
-- old one (Unicode lower case), so no two keys of one resource collide.
UPDATE tags SET key_lower = lower(tag_key COLLATE "C");
