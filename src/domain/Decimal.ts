/**
 * Exact conversion between JSON numbers and scaled integers.
 *
 * A JSON number such as `0.1` is parsed from its shortest decimal spelling (what
 * `String(x)` prints), never through float arithmetic, so `0.1` USD is exactly
 * 100_000_000 nano-dollars.
 *
 * @since 0.1.0
 */

const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/i

/**
 * Scales a finite number by `10^scale` and rounds half away from zero to an integer.
 * Returns `undefined` for NaN or infinities.
 *
 * @example
 * toScaled(1e-7, 9) // 100n
 * @since 0.1.0
 */
export const toScaled = (value: number, scale: number): bigint | undefined => {
  if (!Number.isFinite(value)) return undefined
  const match = DECIMAL.exec(String(value))
  if (match === null) return undefined
  const [, sign = "", whole = "0", fraction = "", exp = "0"] = match
  const digits = BigInt(whole + fraction)
  const shift = scale + Number(exp) - fraction.length
  let scaled: bigint
  if (shift >= 0) {
    scaled = digits * 10n ** BigInt(shift)
  } else {
    const divisor = 10n ** BigInt(-shift)
    scaled = digits / divisor
    if ((digits % divisor) * 2n >= divisor) scaled += 1n
  }
  return sign === "-" ? -scaled : scaled
}

/**
 * The decimal number `value / 10^scale`, as the nearest JSON number.
 *
 * @example
 * fromScaled(100n, 9) // 1e-7
 * @since 0.1.0
 */
export const fromScaled = (value: bigint, scale: number): number => {
  const negative = value < 0n
  const abs = negative ? -value : value
  const unit = 10n ** BigInt(scale)
  const whole = abs / unit
  const fraction = (abs % unit).toString().padStart(scale, "0")
  return Number(`${negative ? "-" : ""}${whole}.${fraction}`)
}
