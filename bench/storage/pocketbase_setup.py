"""Sets up PocketBase for bench/storage.sh: a collection `docs` whose file field is protected and
whose view rule is `owner = @request.auth.id` (the access check a Supabase policy
`owner_id = auth.uid()` makes), a user, and one record per file given; prints, per file, the URL
that downloads it as that user (with a file token), one per line.

    python3 pocketbase_setup.py <base url> <file> [<file> ...]
"""
import json
import sys
import urllib.request
import uuid

base = sys.argv[1]
files = sys.argv[2:]


def call(method, path, body=None, token=None, content_type="application/json"):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", content_type)
    if token:
        request.add_header("Authorization", token)
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or b"{}")


def multipart(fields, file_field, filename, content):
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
    )
    parts.append(content)
    parts.append(f"\r\n--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


admin = call("POST", "/api/collections/_superusers/auth-with-password",
             {"identity": "bench@example.com", "password": "bench-password-123"})["token"]
users = call("GET", "/api/collections/users", token=admin)
call("POST", "/api/collections", {
    "name": "docs",
    "type": "base",
    "listRule": "owner = @request.auth.id",
    "viewRule": "owner = @request.auth.id",
    "fields": [
        {"name": "owner", "type": "relation", "collectionId": users["id"], "maxSelect": 1},
        {"name": "file", "type": "file", "maxSelect": 1, "maxSize": 2 * 1024 * 1024 * 1024, "protected": True},
    ],
}, token=admin)
user = call("POST", "/api/collections/users/records",
            {"email": "ann@example.com", "password": "ann-password-123", "passwordConfirm": "ann-password-123"},
            token=admin)
user_token = call("POST", "/api/collections/users/auth-with-password",
                  {"identity": "ann@example.com", "password": "ann-password-123"})["token"]
for path in files:
    with open(path, "rb") as handle:
        body, content_type = multipart({"owner": user["id"]}, "file", path.rsplit("/", 1)[-1], handle.read())
    record = call("POST", "/api/collections/docs/records", body, token=admin, content_type=content_type)
    file_token = call("POST", "/api/files/token", b"", token=user_token)["token"]
    print(f"{base}/api/files/docs/{record['id']}/{record['file']}?token={file_token}")
