-- finance.factures -> interaction (kind facture), owned by the invoiced tiers.
SELECT
    'finance:facture/' || CAST(f.id AS VARCHAR)                      AS interaction_key,
    'finance'                                                        AS source_system,
    'facture/' || CAST(f.id AS VARCHAR)                              AS source_id,
    'finance:tiers/' || CAST(f.tiers_id AS VARCHAR)                  AS record_key,
    'facture'                                                        AS kind,
    NULLIF(LOWER(TRIM(f.service)), '')                               AS service,
    NULLIF(TRIM(f.libelle), '')                                      AS title,
    NULLIF(LOWER(TRIM(f.statut)), '')                                AS status,
    CAST(f.date_emission AS TIMESTAMPTZ)                             AS opened_at,
    CAST(NULL AS TIMESTAMPTZ)                                        AS closed_at,
    CAST(f.date_echeance AS TIMESTAMPTZ)                             AS due_at,
    CAST(f.montant AS DECIMAL(14,2))                                 AS amount,
    'EUR'                                                            AS currency,
    CAST(NULL AS VARCHAR)                                            AS channel,
    CASE WHEN f.numero IS NOT NULL THEN
        '{"numero": "' || REPLACE(REPLACE(TRIM(f.numero), '\', '\\'), '"', '\"') || '"}'
    END                                                              AS details
FROM raw_finance.factures AS f
