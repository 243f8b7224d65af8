-- Knowledge bases (retrieval under policy): where a knowledge base's documents live (a
-- Chroma collection, or an OpenAI-compatible vector store), the Gatehouse deployment that
-- embeds a query for it, and the backend's credential, sealed like provider keys.
CREATE TABLE knowledge_bases (
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    backend TEXT NOT NULL,
    url TEXT NOT NULL,
    collection TEXT NOT NULL,
    tenant TEXT,
    database_name TEXT,
    embedding_model TEXT,
    credential_sealed TEXT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, name)
);
