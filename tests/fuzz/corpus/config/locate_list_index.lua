-- rules.2.replace
return {
  rules = {
    { ignore = [[
x
y
]] },
    { replace = 1 },
  },
}
