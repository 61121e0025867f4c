-- family.inscriptions -> interaction (kind inscription), owned by the child.
SELECT
    'family:inscription/' || CAST(i.id AS VARCHAR)                   AS interaction_key,
    'family'                                                         AS source_system,
    'inscription/' || CAST(i.id AS VARCHAR)                          AS source_id,
    'family:enfant/' || CAST(i.enfant_id AS VARCHAR)                 AS record_key,
    'inscription'                                                    AS kind,
    NULLIF(LOWER(TRIM(i.activite)), '')                              AS service,
    NULLIF(TRIM(COALESCE(i.activite, '') || ' ' || COALESCE(i.annee_scolaire, '')), '') AS title,
    NULLIF(LOWER(TRIM(i.statut)), '')                                AS status,
    CAST(i.date_debut AS TIMESTAMPTZ)                                AS opened_at,
    CAST(i.date_fin AS TIMESTAMPTZ)                                  AS closed_at,
    CAST(NULL AS TIMESTAMPTZ)                                        AS due_at,
    CAST(NULL AS DECIMAL(14,2))                                      AS amount,
    CAST(NULL AS VARCHAR)                                            AS currency,
    CAST(NULL AS VARCHAR)                                            AS channel,
    CASE WHEN i.annee_scolaire IS NOT NULL THEN
        '{"annee_scolaire": "' || REPLACE(REPLACE(TRIM(i.annee_scolaire), '\', '\\'), '"', '\"') || '"}'
    END                                                              AS details
FROM raw_family.inscriptions AS i
