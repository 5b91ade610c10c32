/**
 * Watch-only deposit addresses: derived from an extended public key (xpub), so whatever holds it can
 * compute addresses but sign nothing. The signer exports the xpub of its account node (for example
 * m/44'/60'/0'); address i is that node's non-hardened child 0/i — the same address the private key
 * derives at m/44'/60'/0'/0/i.
 */
import { secp256k1 } from '@noble/curves/secp256k1'
import { type Address, bytesToHex } from 'viem'
import { HDKey, publicKeyToAddress } from 'viem/accounts'
import { BourseError } from '../lib/errors.ts'

/** Largest non-hardened child index (BIP-32): indices from 2^31 are hardened, which an xpub cannot derive. */
export const MAX_ADDRESS_INDEX = 0x7fffffff

export interface WatchOnlyKey {
  readonly xpub: string
  /** Address `index` of the external (receive) chain 0. */
  address(index: number): Address
}

/** Parses an xpub; refuses an extended *private* key, so a watcher can never be handed one by mistake. */
export function watchOnlyKey(xpub: string): WatchOnlyKey {
  let node: HDKey
  try {
    node = HDKey.fromExtendedKey(xpub)
  } catch (cause) {
    throw new BourseError('invalid_input', 'is not an extended public key', { field: 'xpub', cause })
  }
  if (node.privateKey !== null) {
    throw new BourseError(
      'invalid_input',
      'is an extended private key; the deposit watcher takes only an xpub',
      {
        field: 'xpub',
      },
    )
  }
  const receive = node.deriveChild(0)
  return {
    xpub,
    address(index) {
      if (!Number.isInteger(index) || index < 0 || index > MAX_ADDRESS_INDEX) {
        throw new RangeError(`address index must be an integer 0..${MAX_ADDRESS_INDEX}, got ${index}`)
      }
      const child = receive.deriveChild(index)
      if (child.publicKey === null) throw new Error('derived key has no public key')
      const uncompressed = secp256k1.ProjectivePoint.fromHex(child.publicKey).toRawBytes(false)
      return publicKeyToAddress(bytesToHex(uncompressed))
    },
  }
}
