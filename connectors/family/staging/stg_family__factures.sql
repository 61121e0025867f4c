-- family.factures -> interaction (kind facture), owned by the paying responsable.
SELECT
    'family:facture/' || CAST(f.id AS VARCHAR)                       AS interaction_key,
    'family'                                                         AS source_system,
    'facture/' || CAST(f.id AS VARCHAR)                              AS source_id,
    'family:responsable/' || CAST(f.responsable_id AS VARCHAR)       AS record_key,
    'facture'                                                        AS kind,
    'enfance'                                                        AS service,
    NULLIF(TRIM('Facture ' || COALESCE(f.periode, '')), 'Facture')   AS title,
    NULLIF(LOWER(TRIM(f.statut)), '')                                AS status,
    CAST(f.date_emission AS TIMESTAMPTZ)                             AS opened_at,
    CAST(NULL AS TIMESTAMPTZ)                                        AS closed_at,
    CAST(f.date_echeance AS TIMESTAMPTZ)                             AS due_at,
    CAST(f.montant AS DECIMAL(14,2))                                 AS amount,
    'EUR'                                                            AS currency,
    CAST(NULL AS VARCHAR)                                            AS channel,
    '{"famille_id": ' || COALESCE(CAST(f.famille_id AS VARCHAR), 'null')
        || ', "periode": ' || CASE WHEN f.periode IS NULL THEN 'null'
                                   ELSE '"' || REPLACE(REPLACE(TRIM(f.periode), '\', '\\'), '"', '\"') || '"' END
        || '}'                                                       AS details
FROM raw_family.factures AS f
