-- finance.paiements -> interaction (kind paiement), owned by the tiers of the invoice it pays.
-- LEFT JOIN: a payment of an unknown invoice keeps a null record_key for the quality gate to quarantine.
SELECT
    'finance:paiement/' || CAST(p.id AS VARCHAR)                     AS interaction_key,
    'finance'                                                        AS source_system,
    'paiement/' || CAST(p.id AS VARCHAR)                             AS source_id,
    'finance:tiers/' || CAST(f.tiers_id AS VARCHAR)                  AS record_key,
    'paiement'                                                       AS kind,
    NULLIF(LOWER(TRIM(f.service)), '')                               AS service,
    NULLIF(TRIM(f.libelle), '')                                      AS title,
    'payee'                                                          AS status,
    CAST(p.date_paiement AS TIMESTAMPTZ)                             AS opened_at,
    CAST(p.date_paiement AS TIMESTAMPTZ)                             AS closed_at,
    CAST(NULL AS TIMESTAMPTZ)                                        AS due_at,
    CAST(p.montant AS DECIMAL(14,2))                                 AS amount,
    'EUR'                                                            AS currency,
    CAST(NULL AS VARCHAR)                                            AS channel,
    '{"facture_id": ' || COALESCE(CAST(p.facture_id AS VARCHAR), 'null')
        || ', "mode": ' || CASE WHEN p.mode IS NULL THEN 'null'
                                ELSE '"' || REPLACE(REPLACE(LOWER(TRIM(p.mode)), '\', '\\'), '"', '\"') || '"' END
        || '}'                                                       AS details
FROM raw_finance.paiements AS p
LEFT JOIN raw_finance.factures AS f ON f.id = p.facture_id
