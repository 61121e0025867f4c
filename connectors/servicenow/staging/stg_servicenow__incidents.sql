-- servicenow.incident -> interaction (kind ticket), owned by the caller (reference to sys_user).
-- Deleted incidents (sys_audit_delete) and incidents without a caller are left out.
SELECT
    'servicenow:incident/' || i.sys_id                               AS interaction_key,
    'servicenow'                                                     AS source_system,
    'incident/' || i.sys_id                                          AS source_id,
    'servicenow:sys_user/' || i.caller_id                            AS record_key,
    'ticket'                                                         AS kind,
    NULLIF(LOWER(TRIM(i.category)), '')                              AS service,
    NULLIF(TRIM(i.short_description), '')                            AS title,
    CASE TRIM(i.state)
        WHEN '1' THEN 'new'
        WHEN '2' THEN 'in progress'
        WHEN '3' THEN 'on hold'
        WHEN '6' THEN 'resolved'
        WHEN '7' THEN 'closed'
        WHEN '8' THEN 'canceled'
        ELSE NULLIF(LOWER(TRIM(i.state)), '') END                    AS status,
    CAST(COALESCE(i.opened_at, i.sys_created_on) AS TIMESTAMPTZ)     AS opened_at,
    CAST(COALESCE(i.closed_at, i.resolved_at) AS TIMESTAMPTZ)        AS closed_at,
    CAST(NULL AS TIMESTAMPTZ)                                        AS due_at,
    CAST(NULL AS DECIMAL(14,2))                                      AS amount,
    CAST(NULL AS VARCHAR)                                            AS currency,
    CASE LOWER(TRIM(i.contact_type))
        WHEN 'self-service' THEN 'web'
        WHEN 'phone' THEN 'telephone'
        WHEN 'email' THEN 'email'
        WHEN 'walk-in' THEN 'guichet'
        ELSE NULLIF(LOWER(TRIM(i.contact_type)), '') END             AS channel,
    CASE WHEN i.number IS NOT NULL THEN
        '{"number": "' || REPLACE(REPLACE(TRIM(i.number), '\', '\\'), '"', '\"') || '"}'
    END                                                              AS details
FROM raw_servicenow.incident AS i
WHERE NULLIF(TRIM(i.caller_id), '') IS NOT NULL
  AND NOT EXISTS (
    SELECT 1 FROM raw_servicenow.sys_audit_delete AS d
    WHERE d.tablename = 'incident' AND d.documentkey = i.sys_id
  )
