DROP TABLE prompt_versions;
DROP FUNCTION prompt_versions_immutable();
DROP TABLE prompts;
