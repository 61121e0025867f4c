-- salesforce: contacts of an Organization account -> organisation_role (role contact).
SELECT
    'salesforce:account/' || c.account_id                            AS organisation_key,
    'salesforce:contact/' || c.id                                    AS record_key,
    'contact'                                                        AS role,
    CAST(NULL AS DATE)                                               AS valid_from,
    CAST(NULL AS DATE)                                               AS valid_to
FROM raw_salesforce.contacts AS c
JOIN raw_salesforce.accounts AS a ON a.id = c.account_id
WHERE a.type = 'Organization' AND NOT COALESCE(c.is_deleted, FALSE) AND NOT COALESCE(a.is_deleted, FALSE)
