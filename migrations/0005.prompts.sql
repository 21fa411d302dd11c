-- Named system prompts, versioned: every change is a new immutable version.
-- depends: 0004.files

CREATE TABLE prompts (
    name           text        PRIMARY KEY,
    latest_version integer     NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    -- Set by DELETE: the prompt is hidden; its versions are kept. A new PUT brings it back.
    retired_at     timestamptz,
    CONSTRAINT prompts_name CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
    CONSTRAINT prompts_latest_version CHECK (latest_version > 0)
);

CREATE TABLE prompt_versions (
    name       text        NOT NULL REFERENCES prompts (name) ON DELETE CASCADE,
    version    integer     NOT NULL,
    content    text        NOT NULL,
    metadata   jsonb       NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version),
    CONSTRAINT prompt_versions_version CHECK (version > 0),
    CONSTRAINT prompt_versions_metadata_object CHECK (jsonb_typeof(metadata) = 'object')
);

-- Versions are immutable: an agent that pinned version N gets the same text forever.
CREATE FUNCTION prompt_versions_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'prompt versions are immutable (% version %)', OLD.name, OLD.version
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE TRIGGER prompt_versions_immutable
    BEFORE UPDATE ON prompt_versions
    FOR EACH ROW EXECUTE FUNCTION prompt_versions_immutable();
