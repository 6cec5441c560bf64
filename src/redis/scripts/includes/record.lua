-- A row record's head (ledger/rowRecord.ts): kind (1 byte), varint source number, varint line, then the user
-- (varint byte length × 8 + form, then the bytes). The scripts compare places and users byte for byte: both are
-- canonical encodings, so equal bytes mean the same place, the same App User ID.

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
  local _, p = rec_varint(rec, 2)
  _, p = rec_varint(rec, p)
  local header, q = rec_varint(rec, p)
  return string.sub(rec, 1, 1), string.sub(rec, 2, p - 1), string.sub(rec, p, q + math.floor(header / 8) - 1)
end
