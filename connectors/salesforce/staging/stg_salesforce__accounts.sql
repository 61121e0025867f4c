-- salesforce.accounts of type Organization -> organisation (household accounts are households).
SELECT
    'salesforce:account/' || a.id                                    AS organisation_key,
    'salesforce'                                                     AS source_system,
    'account/' || a.id                                               AS source_id,
    COALESCE(NULLIF(TRIM(a.name), ''), a.id)                         AS name,
    CAST(NULL AS VARCHAR)                                            AS rna,
    CAST(NULL AS VARCHAR)                                            AS siren,
    CAST(NULL AS VARCHAR)                                            AS siret,
    NULLIF(TRIM(a.billing_street), '')                               AS address_line,
    NULLIF(TRIM(a.billing_postal_code), '')                          AS postcode,
    NULLIF(TRIM(a.billing_city), '')                                 AS city
FROM raw_salesforce.accounts AS a
WHERE a.type = 'Organization' AND NOT COALESCE(a.is_deleted, FALSE)
