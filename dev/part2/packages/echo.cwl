# A trivial package for quick Part 2 tests: `message` repeated `count` times (version 1.0.0).
cwlVersion: v1.2
$namespaces:
  s: https://schema.org/
s:softwareVersion: 1.0.0
$graph:
  - class: Workflow
    id: echo
    label: Echo
    doc: Returns `message` repeated `count` times, joined by spaces (also as a text file).
    inputs:
      message:
        label: Message
        doc: The text to echo.
        type: string
      count:
        label: Count
        doc: How many times to repeat the message.
        type: int
        default: 1
    outputs:
      echo:
        label: Echo
        doc: The repeated message.
        type: string
        outputSource: node_echo/echo
      echo_file:
        label: Echo file
        doc: The repeated message as a text file.
        type: File
        outputSource: node_echo/echo_file
    steps:
      node_echo:
        run: "#echo-tool"
        in:
          message: message
          count: count
        out: [echo, echo_file]
  - class: CommandLineTool
    id: echo-tool
    baseCommand:
      - sh
      - -c
      - 'out=""; i=0; while [ "$i" -lt "$1" ]; do out="$out${out:+ }$0"; i=$((i+1)); done; printf "%s" "$out" > echo.txt'
    inputs:
      message:
        type: string
        inputBinding: {position: 1}
      count:
        type: int
        inputBinding: {position: 2}
    outputs:
      echo:
        type: string
        outputBinding:
          glob: echo.txt
          loadContents: true
          outputEval: $(self[0].contents)
      echo_file:
        type: File
        outputBinding:
          glob: echo.txt
