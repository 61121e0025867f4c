-- salesforce.cases -> interaction (kind demande), owned by the case's contact. Cases without a
-- contact (organisation-level) and cases deleted to the recycle bin are left out.
SELECT
    'salesforce:case/' || k.id                                       AS interaction_key,
    'salesforce'                                                     AS source_system,
    'case/' || k.id                                                  AS source_id,
    'salesforce:contact/' || k.contact_id                            AS record_key,
    'demande'                                                        AS kind,
    NULLIF(LOWER(TRIM(k.type)), '')                                  AS service,
    NULLIF(TRIM(k.subject), '')                                      AS title,
    NULLIF(LOWER(TRIM(k.status)), '')                                AS status,
    CAST(k.created_date AS TIMESTAMPTZ)                              AS opened_at,
    CAST(k.closed_date AS TIMESTAMPTZ)                               AS closed_at,
    CAST(NULL AS TIMESTAMPTZ)                                        AS due_at,
    CAST(NULL AS DECIMAL(14,2))                                      AS amount,
    CAST(NULL AS VARCHAR)                                            AS currency,
    CASE LOWER(TRIM(k.origin))
        WHEN 'web' THEN 'web'
        WHEN 'phone' THEN 'telephone'
        WHEN 'email' THEN 'email'
        ELSE NULLIF(LOWER(TRIM(k.origin)), '') END                   AS channel,
    CASE WHEN k.case_number IS NOT NULL THEN
        '{"case_number": "' || REPLACE(REPLACE(TRIM(k.case_number), '\', '\\'), '"', '\"') || '"}'
    END                                                              AS details
FROM raw_salesforce.cases AS k
WHERE NULLIF(TRIM(k.contact_id), '') IS NOT NULL AND NOT COALESCE(k.is_deleted, FALSE)
