-- sluice.raise_error: raises an ERROR with the given SQLSTATE, message, detail and hint (NULL: none).
-- The sidecar's generated SQL calls it for the guards PostgREST checks after a statement ("exactly one
-- row" for a single-object write, `Prefer: max-affected`), so that the statement itself fails with a code
-- of its own and its write is undone: no cast error provoked, no message text read back. It returns
-- text only so that it can stand in any expression (`sluice.raise_error(...)::int8`); it never returns.
CREATE FUNCTION sluice.raise_error(error_code text, error_message text, error_detail text DEFAULT NULL, error_hint text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF error_detail IS NULL AND error_hint IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = error_code, MESSAGE = error_message;
    ELSIF error_hint IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = error_code, MESSAGE = error_message, DETAIL = error_detail;
    ELSIF error_detail IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = error_code, MESSAGE = error_message, HINT = error_hint;
    ELSE
        RAISE EXCEPTION USING ERRCODE = error_code, MESSAGE = error_message, DETAIL = error_detail, HINT = error_hint;
    END IF;
END
$$;
COMMENT ON FUNCTION sluice.raise_error(text, text, text, text) IS 'Raises an ERROR with this SQLSTATE, message, detail and hint (the sidecar''s request guards).';
-- The request roles run the generated SQL; raising an error of one's choosing grants nothing.
REVOKE ALL ON FUNCTION sluice.raise_error(text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sluice.raise_error(text, text, text, text) TO anon, authenticated, service_role;
