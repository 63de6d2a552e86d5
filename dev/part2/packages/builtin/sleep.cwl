# Built-in (immutable) process of the Part 2 server: sleeps `seconds` seconds. A single
# CommandLineTool (not a $graph); handy for dismiss tests.
cwlVersion: v1.2
class: CommandLineTool
id: sleep
label: Sleep
doc: Sleeps `seconds` seconds (built into the server, so it cannot be replaced or undeployed).
$namespaces:
  s: https://schema.org/
s:softwareVersion: 1.0.0
baseCommand: sleep
inputs:
  seconds:
    label: Seconds
    doc: How long to sleep.
    type: float
    inputBinding: {position: 1}
outputs:
  slept:
    label: Slept
    doc: The seconds slept.
    type: float
    outputBinding:
      outputEval: $(inputs.seconds)
