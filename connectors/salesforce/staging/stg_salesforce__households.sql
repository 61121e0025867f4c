-- salesforce: contacts grouped by their household Account -> household_membership (live records).
SELECT
    'salesforce'                                                     AS source_system,
    'salesforce:account/' || c.account_id                            AS household_id,
    'salesforce:contact/' || c.id                                    AS record_key,
    'responsable'                                                    AS role,
    CAST(NULL AS DATE)                                               AS valid_from,
    CAST(NULL AS DATE)                                               AS valid_to
FROM raw_salesforce.contacts AS c
JOIN raw_salesforce.accounts AS a ON a.id = c.account_id
WHERE a.type = 'Household' AND NOT COALESCE(c.is_deleted, FALSE) AND NOT COALESCE(a.is_deleted, FALSE)
