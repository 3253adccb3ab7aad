// The model zoo as one namespace: models.resnet18 / resnet34 / resnet50 / mobilenetV2 (torchvision's architectures
// and keys) and the CIFAR-style ResNets of every depth 6n + 2: models.cifarResNet(depth, { shortcut: 'A' | 'B' }) and
// models.resnet20 / resnet32 / resnet44 / resnet56 / resnet110.

export { resnet18, resnet34, resnet50, ResNet, BasicBlock, Bottleneck, type ResNetOptions } from './resnet.js';
export {
  cifarResNet, resnet20, resnet32, resnet44, resnet56, resnet110, cifarResNetBlocks, CifarResNet, CifarBasicBlock, OptionAShortcut, CIFAR_SHORTCUTS,
  type CifarResNetOptions, type CifarShortcut,
} from './cifar-resnet.js';
export { mobilenetV2, MobileNetV2, InvertedResidual, makeDivisible, type MobileNetV2Options } from './mobilenet-v2.js';
