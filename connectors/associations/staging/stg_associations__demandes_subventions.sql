-- associations.demandes_subvention -> interaction (kind subvention), owned by the filing dirigeant.
-- due_at stays null: the legal answer deadline is a rule of the warehouse, not a fact of the silo.
SELECT
    'associations:demande_subvention/' || TRIM(s.numero)             AS interaction_key,
    'associations'                                                   AS source_system,
    'demande_subvention/' || TRIM(s.numero)                          AS source_id,
    'associations:dirigeant/' || CAST(s.dirigeant_id AS VARCHAR)     AS record_key,
    'subvention'                                                     AS kind,
    'vie associative'                                                AS service,
    NULLIF(TRIM(s.objet), '')                                        AS title,
    NULLIF(LOWER(TRIM(s.statut)), '')                                AS status,
    CAST(s.date_depot AS TIMESTAMPTZ)                                AS opened_at,
    CAST(s.date_decision AS TIMESTAMPTZ)                             AS closed_at,
    CAST(NULL AS TIMESTAMPTZ)                                        AS due_at,
    CAST(s.montant_demande AS DECIMAL(14,2))                         AS amount,
    'EUR'                                                            AS currency,
    CAST(NULL AS VARCHAR)                                            AS channel,
    '{"rna": "' || REPLACE(REPLACE(TRIM(COALESCE(s.rna, '')), '\', '\\'), '"', '\"') || '"'
        || ', "montant_accorde": ' || COALESCE('"' || CAST(s.montant_accorde AS VARCHAR) || '"', 'null')
        || '}'                                                       AS details
FROM raw_associations.demandes_subvention AS s
WHERE s._deleted_at IS NULL  -- rows a full export no longer lists are gone from the silo
