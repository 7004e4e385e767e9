import { Option } from "effect"
import { describe, expect, it } from "vitest"
import * as UsageMeter from "../../src/http/UsageMeter.js"
import { countText } from "../../src/services/TokenEstimator.js"

describe("UsageMeter", () => {
  it("takes the usage chunk of a stream and counts the delivered deltas", () => {
    const meter = UsageMeter.make()
    meter.observeEvent('{"choices":[{"delta":{"role":"assistant","content":""}}],"usage":null}')
    meter.observeEvent('{"choices":[{"delta":{"content":"Hello there, "}}],"usage":null}')
    meter.observeEvent(
      '{"choices":[{"delta":{"tool_calls":[{"function":{"name":"f","arguments":"{\\"x\\":1}"}}]}}]}'
    )
    expect(Option.isNone(meter.reported())).toBe(true)
    expect(meter.deliveredTokens()).toBe(countText('Hello there, f{"x":1}'))
    meter.observeEvent(
      '{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":4}}}'
    )
    meter.observeEvent("[DONE]")
    expect(meter.reported()).toEqual(
      Option.some({ promptTokens: 12, completionTokens: 5, cachedPromptTokens: 4 })
    )
  })

  it("reads a JSON body: chat, completions and embeddings", () => {
    const chat = UsageMeter.make()
    chat.observeBody('{"choices":[{"message":{"content":"word0 word1"}}]}')
    expect(chat.deliveredTokens()).toBe(countText("word0 word1"))
    const completion = UsageMeter.make()
    completion.observeBody('{"choices":[{"text":"abc"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}')
    expect(completion.reported()).toEqual(Option.some({ promptTokens: 3, completionTokens: 1 }))
    const embedding = UsageMeter.make()
    embedding.observeBody('{"data":[],"usage":{"prompt_tokens":9,"total_tokens":9}}')
    expect(embedding.reported()).toEqual(Option.some({ promptTokens: 9, completionTokens: 0 }))
  })

  it("ignores what is not JSON or not a valid usage", () => {
    const meter = UsageMeter.make()
    meter.observeEvent("not json")
    meter.observeEvent('{"usage":{"prompt_tokens":-1,"completion_tokens":2}}')
    meter.observeEvent('{"usage":{"prompt_tokens":1.5,"completion_tokens":2}}')
    meter.observeBody("[1,2,3]")
    expect(meter.reported()).toEqual(Option.none())
    expect(meter.deliveredTokens()).toBe(0)
  })

  it("counts long streams in slices, close to counting the whole text", () => {
    const meter = UsageMeter.make()
    const words = Array.from({ length: 40_000 }, (_, i) => `w${i % 97} `)
    for (const word of words) meter.observeEvent(JSON.stringify({ choices: [{ delta: { content: word } }] }))
    const whole = countText(words.join(""))
    expect(Math.abs(meter.deliveredTokens() - whole)).toBeLessThanOrEqual(10)
  })
})
