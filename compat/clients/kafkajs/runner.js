'use strict'
// kafkajs runner of Gregor's stock-client matrix (compat/SCENARIOS.md):
//   run --list
//   run --bootstrap HOST:PORT --scenario NAME --topic TOPIC
// Exit 0: PASS; 1: FAIL, the reason on the last line of stderr; 2: not applicable.

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'

const scenarios = require('./scenarios')
const { Failure } = require('./common')

// Under the matrix's 120 s kill, so a stuck scenario still reports a reason.
const SCENARIO_TIMEOUT_MS = 100000

function parseArgs(argv) {
  const options = {}
  for (let n = 0; n < argv.length; n++) {
    const arg = argv[n]
    if (arg === '--list') options.list = true
    else if (['--bootstrap', '--scenario', '--topic'].includes(arg) && n + 1 < argv.length) {
      options[arg.slice(2)] = argv[++n]
    } else return null
  }
  return options
}

const oneLine = text => String(text).split(/\s+/).filter(Boolean).join(' ')

function finish(code, reason) {
  if (reason) process.stderr.write(`${oneLine(reason)}\n`)
  process.exit(code)
}

async function main() {
  const options = parseArgs(process.argv.slice(2))
  if (options && options.list) {
    process.stdout.write(Object.keys(scenarios).map(name => `${name}\n`).join(''))
    return finish(0)
  }
  if (!options || !options.bootstrap || !options.scenario || !options.topic) {
    return finish(1, 'usage: run --list | run --bootstrap HOST:PORT --scenario NAME --topic TOPIC')
  }
  const scenario = scenarios[options.scenario]
  if (!scenario) return finish(2, `scenario "${options.scenario}" is not implemented by kafkajs`)
  setTimeout(() => finish(1, `timed out after ${SCENARIO_TIMEOUT_MS} ms`), SCENARIO_TIMEOUT_MS).unref()
  try {
    await scenario(options.bootstrap, options.topic)
  } catch (error) {
    const kind = error instanceof Failure ? '' : `${error.name}: `
    const type = error.type ? ` [${error.type}]` : ''
    return finish(1, `${kind}${error.message}${type}`)
  }
  return finish(0)
}

main()
