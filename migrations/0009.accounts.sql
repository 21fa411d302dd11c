-- Accounts kept by chatkeep for applications without a login service of their own
-- (CHATKEEP_ACCOUNTS): a username, the user id its tokens name, an argon2 password hash.
-- depends: 0008.app_needs

CREATE TABLE accounts (
    username      text        PRIMARY KEY,
    -- The user id (sub) of the account's tokens, hence of its conversations: the username unless
    -- the operator chose another (`chatkeep users create --user-id`, an application's own id).
    user_id       text        NOT NULL,
    -- argon2id in its PHC string form ($argon2id$v=19$m=...,t=...,p=...$<salt>$<hash>).
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- Set: the account cannot log in (tokens it already holds last until they expire).
    disabled_at   timestamptz,
    CONSTRAINT accounts_user_id_key UNIQUE (user_id),
    CONSTRAINT accounts_username_length CHECK (char_length(username) BETWEEN 1 AND 255),
    CONSTRAINT accounts_user_id_length CHECK (char_length(user_id) BETWEEN 1 AND 255),
    CONSTRAINT accounts_password_hash CHECK (password_hash LIKE '$argon2%')
);
