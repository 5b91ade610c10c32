/**
 * The environment that names the NSQ servers, shared by every component on the bus. One variable holding
 * JSON, because the Exchange resource points at one key of one Secret:
 *   BOURSE_NSQ={"nsqd": "nsqd:4150", "nsqdHttp": "http://nsqd:4151", "lookupd": ["http://nsqlookupd:4161"]}
 * `nsqd` is the TCP address this process publishes to, `nsqdHttp` that nsqd's HTTP API (topics and
 * channels are created there), `lookupd` optional nsqlookupd HTTP URLs to also consume from other nsqds.
 */
import { z } from 'zod'
import type { NsqConfig } from './nsq.ts'

const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s):// URL' })

const NsqSettings = z.object({
  nsqd: z.string().regex(/^[^\s:/]+:\d{1,5}$/, 'expected host:port'),
  nsqdHttp: httpUrl,
  lookupd: z.array(httpUrl).optional(),
})

const EXPECTED = 'expected JSON {"nsqd": "host:port", "nsqdHttp": "http://host:port", "lookupd": [urls]}'

/** BOURSE_NSQ parsed into the NSQ bus's settings; a bad field is reported by its name. */
export function nsqSettings() {
  return z.string({ error: EXPECTED }).transform((text, ctx): Omit<NsqConfig, 'logger'> => {
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      ctx.issues.push({ code: 'custom', message: EXPECTED, input: text })
      return z.NEVER
    }
    const parsed = NsqSettings.safeParse(json)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!
      ctx.issues.push({ code: 'custom', message: `${issue.path.join('.')}: ${issue.message}`, input: text })
      return z.NEVER
    }
    const { nsqd, nsqdHttp, lookupd } = parsed.data
    return { nsqdTcp: nsqd, nsqdHttp, ...(lookupd && { lookupdHttp: lookupd }) }
  })
}

export const nsqEnv = { BOURSE_NSQ: nsqSettings() }
