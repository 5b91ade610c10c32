/**
 * An OIDC issuer for tests: a local HTTP server with the discovery document and a JWKS holding one ES256 key
 * generated here, and a function that signs JWTs with it (or with a stranger's key).
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'

export interface TestIssuer {
  issuer: string
  /** A JWT of this issuer; `exp` is a jose time span ('5m', '-1m'); `foreign` signs with a key not in the JWKS. */
  sign(claims: { sub?: string; iss?: string; aud?: string; exp?: string; foreign?: boolean }): Promise<string>
  close(): Promise<void>
}

export async function startTestIssuer(audience = 'bourse'): Promise<TestIssuer> {
  const { publicKey, privateKey } = await generateKeyPair('ES256')
  const stranger = (await generateKeyPair('ES256')).privateKey
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }
  let issuer = ''
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json')
    if (req.url === '/.well-known/openid-configuration')
      res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }))
    else if (req.url === '/jwks') res.end(JSON.stringify({ keys: [jwk] }))
    else {
      res.statusCode = 404
      res.end('{}')
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    issuer,
    sign(claims) {
      const token = new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuedAt()
        .setIssuer(claims.iss ?? issuer)
        .setAudience(claims.aud ?? audience)
        .setExpirationTime(claims.exp ?? '5m')
      if (claims.sub !== undefined) token.setSubject(claims.sub)
      return token.sign(claims.foreign ? stranger : privateKey)
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
