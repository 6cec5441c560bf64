-- A row record's head (ledger/rowRecord.ts): kind (1 byte), format (1 byte), varint source number, varint line,
-- then the user (a varint header, then the bytes: 16 of them for the UUID and anonymous-id forms, else
-- header / 8). The scripts compare places and users byte for byte: both are canonical encodings, so equal bytes
-- mean the same place, the same user.
local ROW_FORMAT = 1 -- FORMAT.row
local USER_FORM_UUID = 2 -- a UUID, lowercase (USER_FORM.uuid)
local USER_FORM_UUID_UPPER = 3 -- a UUID, uppercase (USER_FORM.UUID)
local USER_FORM_ANONYMOUS16 = 6 -- $RCAnonymousID: and 32 hex digits (USER_FORM.anonymous16)

-- The varint at `pos` and the position after it.
local function rec_varint(s, pos)
  local value, mul = 0, 1
  while true do
    local b = string.byte(s, pos)
    pos = pos + 1
    if b < 128 then return value + b * mul, pos end
    value = value + (b - 128) * mul
    mul = mul * 128
  end
end

-- kind, place (source number and line, as bytes) and user (as bytes) of a record.
local function rec_head(rec)
  if string.byte(rec, 2) ~= ROW_FORMAT then error('a row record of another format: a ledger written by another version of rc-migrate') end
  local _, p = rec_varint(rec, 3)
  _, p = rec_varint(rec, p)
  local header, q = rec_varint(rec, p)
  local form = header % 8
  local length = math.floor(header / 8)
  if form == USER_FORM_UUID or form == USER_FORM_UUID_UPPER or form == USER_FORM_ANONYMOUS16 then length = 16 end
  return string.sub(rec, 1, 1), string.sub(rec, 3, p - 1), string.sub(rec, p, q + length - 1)
end

-- A record without a final answer: kind, format, place, user.
local function rec_make(kind, place, user)
  return kind .. string.char(ROW_FORMAT) .. place .. user
end
