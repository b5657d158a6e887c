-- SigV4 signing and the credential and region lookup of the DynamoDB
-- backend.
local sigv4 = require "dynafile.remote.sigv4"
local credentials = require "dynafile.remote.credentials"

describe("SigV4", function()
  it("signs AWS's documented example request to the same signature", function()
    -- AWS's Signature Version 4 example: GET iam ListUsers, 2015-08-30
    local t = 1440938160 -- 20150830T123600Z
    local h, creq = sigv4.sign({
      method = "GET", path = "/", query = "Action=ListUsers&Version=2010-05-08",
      headers = { host = "iam.amazonaws.com",
        ["content-type"] = "application/x-www-form-urlencoded; charset=utf-8" },
      body = "", time = t, region = "us-east-1", service = "iam",
    }, { access_key_id = "AKIDEXAMPLE",
         secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" })
    assert.equal("20150830T123600Z", h["x-amz-date"])
    assert.equal("f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59",
      sigv4.sha256_hex(creq))
    assert.equal("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
      .. "SignedHeaders=content-type;host;x-amz-date, "
      .. "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
      h.authorization)
  end)

  it("signs the session token and changes the signature with the body", function()
    local r = { method = "POST", path = "/", body = "{}", time = 1440938160,
      region = "eu-west-1", service = "dynamodb", headers = { host = "h" } }
    local c = { access_key_id = "A", secret_access_key = "S", session_token = "T" }
    local h1 = sigv4.sign(r, c)
    assert.equal("T", h1["x-amz-security-token"])
    assert.matches("SignedHeaders=host;x%-amz%-date;x%-amz%-security%-token,", h1.authorization)
    r.body = "{ }"
    local h2 = sigv4.sign(r, c)
    assert.are_not.equal(h1.authorization, h2.authorization)
  end)
end)

describe("SigV4 signing keys", function()
  local hmac = require "openssl.hmac"
  local digest = require "openssl.digest"
  local function H(k, m) return hmac.new(k, "sha256"):final(m) end

  -- The signature computed here from luaossl alone, step by step.
  local function expected(secret, day, region, amz_date, creq)
    local k = H(H(H(H("AWS4" .. secret, day), region), "dynamodb"), "aws4_request")
    local sts = "AWS4-HMAC-SHA256\n" .. amz_date .. "\n" .. day .. "/" .. region
      .. "/dynamodb/aws4_request\n" .. sigv4.hex(digest.new("sha256"):final(creq))
    return sigv4.hex(H(k, sts))
  end

  -- Every provider of SHA-256/HMAC this Lua has, the one in use first.
  local providers = { sigv4.crypto }
  for _, name in ipairs { "dynafile.remote.crypto", "libcrypto (FFI)", "luaossl" } do
    if name ~= sigv4.crypto then providers[#providers + 1] = name end
  end
  local default = sigv4.crypto
  after_each(function() assert(sigv4.use(default)) end)

  for _, provider in ipairs(providers) do
    it("gives every request the signature of its own key, day and region, cached or not ("
        .. provider .. ")", function()
      local ok, why = sigv4.use(provider)
      if not ok then
        -- only the FFI may be missing (not LuaJIT)
        assert.equal("libcrypto (FFI)", provider, why)
        assert.is_nil(jit) -- luacheck: ignore 113
        return
      end
      assert.equal(provider, sigv4.crypto)
      local body = '{"TableName":"t","Key":{"PK":{"S":"a"}}}'
      local cases = {
        { "S1", "us-east-1", 1440938160 }, { "S1", "us-east-1", 1440938161 },
        { "S1", "us-east-1", 1441024560 }, { "S2", "us-east-1", 1441024560 },
        { "S2", "eu-west-1", 1441024560 }, { "S1", "us-east-1", 1440938160 },
      }
      for round = 1, 2 do
        collectgarbage() -- (whatever the contexts point to must survive)
        collectgarbage()
        for i, c in ipairs(cases) do
          for j, token in ipairs { false, "TOKEN", false, false } do
            -- hosts, paths and targets change too (their parts are kept)
            local host = j == 3 and "h:2" or "h:1"
            local path = j == 4 and "/x" or "/"
            local target = "DynamoDB_20120810." .. (i % 2 == 0 and "GetItem" or "PutItem")
            local creds = { access_key_id = "AK", secret_access_key = c[1],
              session_token = token or nil }
            local amz_date, auth = sigv4.sign_dynamodb(target, body, host, path, c[2], creds, c[3])
            local _, creq = sigv4.sign({ method = "POST", path = path, body = body, time = c[3],
              region = c[2], service = "dynamodb", headers = { host = host,
              ["content-type"] = "application/x-amz-json-1.0",
              ["x-amz-target"] = target } }, creds)
            local sig = auth:match("Signature=(%x+)$")
            assert.equal(expected(c[1], amz_date:sub(1, 8), c[2], amz_date, creq), sig,
              "round " .. round .. ", case " .. i .. ", variant " .. j)
          end
        end
      end
      assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        sigv4.sha256_hex("abc"))
      assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        sigv4.sha256_hex("a", "", "bc"))
      assert.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b"
        .. "7852b855", sigv4.sha256_hex(""))
    end)
  end

  it("uses the C module dynafile.remote.crypto (built with libcrypto 3)", function()
    -- scripts/install-deps.sh installs libcrypto's headers, so make builds it
    assert.equal("dynafile.remote.crypto", default)
    local c = require "dynafile.remote.crypto"
    local k = c.hmac_key("key")
    assert.equal(hmac.new("key", "sha256"):final("m"), c.hmac(k, "m"))
    assert.equal(sigv4.hex(hmac.new("key", "sha256"):final(string.rep("x", 1000))),
      c.hmac_hex(k, string.rep("x", 400), string.rep("x", 600)))
    assert.equal(digest.new("sha256"):final("abc"), c.sha256("ab", "c"))
    assert.error_matches(function() c.hmac_hex("key", "m") end, "hmac_key expected")
    assert.error_matches(function() c.sha256_hex("a", {}) end, "string expected")
  end)

  it("refuses a provider it does not know", function()
    local ok, why = sigv4.use("md5")
    assert.is_nil(ok)
    assert.equal("no provider md5", why)
    assert.equal(default, sigv4.crypto)
  end)
end)

describe("credentials and region", function()
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. dir)
  local function write(name, text)
    local f = assert(io.open(dir .. "/" .. name, "w"))
    f:write(text)
    f:close()
    return dir .. "/" .. name
  end

  it("prefer the options, and read profiles from the shared files", function()
    local c, where = credentials.resolve({ credentials = { access_key_id = "a",
      secret_access_key = "b" } })
    assert.equal("a", c.access_key_id)
    assert.equal("the credentials option", where)
    local ini = credentials.read_ini(write("credentials",
      "[default]\naws_access_key_id = K1\naws_secret_access_key=S1\n\n[dev]\n"
      .. "aws_access_key_id=K2\naws_secret_access_key = S2\naws_session_token = T2\n"))
    assert.same({ aws_access_key_id = "K2", aws_secret_access_key = "S2",
      aws_session_token = "T2" }, ini.dev)
    local cfg = credentials.read_ini(write("config", "[profile dev]\nregion = eu-north-1\n"))
    assert.equal("eu-north-1", cfg["profile dev"].region)
    assert.equal("ap-south-1", credentials.region({ region = "ap-south-1" }))
  end)
end)
