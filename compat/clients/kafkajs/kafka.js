'use strict'
// kafkajs with every codec registered: gzip is built in; snappy, lz4 and
// zstd come from the codec packages kafkajs documents. Each codec is wrapped
// to count its calls, so a scenario can prove which codec did the work.

const kafkajs = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const LZ4Codec = require('kafkajs-lz4')
const ZstdCodec = require('@kafkajs/zstd')

const { CompressionTypes, CompressionCodecs } = kafkajs

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec
CompressionCodecs[CompressionTypes.ZSTD] = ZstdCodec()

/** codecCalls[type] counts { compress, decompress } calls of that codec. */
const codecCalls = {}
for (const type of [CompressionTypes.GZIP, CompressionTypes.Snappy, CompressionTypes.LZ4, CompressionTypes.ZSTD]) {
  const factory = CompressionCodecs[type]
  const calls = (codecCalls[type] = { compress: 0, decompress: 0 })
  CompressionCodecs[type] = () => {
    const codec = factory()
    return {
      async compress(encoder) {
        calls.compress++
        return codec.compress(encoder)
      },
      async decompress(buffer) {
        calls.decompress++
        return codec.decompress(buffer)
      },
    }
  }
}

module.exports = { ...kafkajs, codecCalls }
