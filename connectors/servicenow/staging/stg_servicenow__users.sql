-- servicenow.sys_user -> person_record (role compte: an online account's holder). The Table API never lists deleted records:
-- a sys_audit_delete row for the user gives deleted_at. No birth date: the desk does not ask.
SELECT
    'servicenow:sys_user/' || u.sys_id                               AS record_key,
    'servicenow'                                                     AS source_system,
    'sys_user/' || u.sys_id                                          AS source_id,
    'compte'                                                         AS role,
    NULLIF(TRIM(u.first_name), '')                                   AS given_names,
    CAST(NULL AS VARCHAR)                                            AS birth_name,
    NULLIF(TRIM(u.last_name), '')                                    AS usage_name,
    CAST(NULL AS VARCHAR)                                            AS sex,
    CAST(NULL AS DATE)                                               AS birth_date,
    CAST(NULL AS VARCHAR)                                            AS birth_date_precision,
    CAST(NULL AS VARCHAR)                                            AS birth_place_code,
    CAST(NULL AS VARCHAR)                                            AS birth_country_code,
    NULLIF(TRIM(u.email), '')                                        AS email,
    COALESCE(NULLIF(TRIM(u.mobile_phone), ''), NULLIF(TRIM(u.phone), '')) AS phone,
    NULLIF(TRIM(u.street), '')                                       AS address_line,
    NULLIF(TRIM(u.zip), '')                                          AS postcode,
    NULLIF(TRIM(u.city), '')                                         AS city,
    CAST(NULL AS VARCHAR)                                            AS city_code,
    CAST(NULL AS VARCHAR)                                            AS country,
    CAST(0 AS INTEGER)                                               AS certification_level,
    CAST(u.sys_updated_on AS TIMESTAMPTZ)                            AS updated_at,
    CAST(d.deleted_at AS TIMESTAMPTZ)                                AS deleted_at
FROM raw_servicenow.sys_user AS u
LEFT JOIN (
    SELECT documentkey, MAX(sys_created_on) AS deleted_at
    FROM raw_servicenow.sys_audit_delete
    WHERE tablename = 'sys_user'
    GROUP BY documentkey
) AS d ON d.documentkey = u.sys_id
