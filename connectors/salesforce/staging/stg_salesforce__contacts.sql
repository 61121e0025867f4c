-- salesforce.contacts -> person_record (role contact). A contact deleted to the recycle bin
-- (IsDeleted, seen through queryAll) is kept with deleted_at = its SystemModstamp, the deletion time.
SELECT
    'salesforce:contact/' || c.id                                    AS record_key,
    'salesforce'                                                     AS source_system,
    'contact/' || c.id                                               AS source_id,
    'contact'                                                        AS role,
    NULLIF(TRIM(c.first_name), '')                                   AS given_names,
    CAST(NULL AS VARCHAR)                                            AS birth_name,
    NULLIF(TRIM(c.last_name), '')                                    AS usage_name,
    CAST(NULL AS VARCHAR)                                            AS sex,
    CAST(c.birthdate AS DATE)                                        AS birth_date,
    CASE WHEN c.birthdate IS NOT NULL THEN 'day' END                 AS birth_date_precision,
    CAST(NULL AS VARCHAR)                                            AS birth_place_code,
    CAST(NULL AS VARCHAR)                                            AS birth_country_code,
    NULLIF(TRIM(c.email), '')                                        AS email,
    -- the mobile is the person's own; Phone is often the household landline
    COALESCE(NULLIF(TRIM(c.mobile_phone), ''), NULLIF(TRIM(c.phone), '')) AS phone,
    NULLIF(TRIM(c.mailing_street), '')                               AS address_line,
    NULLIF(TRIM(c.mailing_postal_code), '')                          AS postcode,
    NULLIF(TRIM(c.mailing_city), '')                                 AS city,
    CAST(NULL AS VARCHAR)                                            AS city_code,
    CAST(NULL AS VARCHAR)                                            AS country,
    CAST(0 AS INTEGER)                                               AS certification_level,
    CAST(c.system_modstamp AS TIMESTAMPTZ)                           AS updated_at,
    CASE WHEN c.is_deleted THEN CAST(c.system_modstamp AS TIMESTAMPTZ) END AS deleted_at
FROM raw_salesforce.contacts AS c
